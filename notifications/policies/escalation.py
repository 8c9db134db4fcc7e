"""Escalation: a critical or high event routed by a rule with ``escalate`` gets a row that
sends it again on the listed channels if nobody acknowledges (or resolves) it within
``after_minutes`` (the escalation sweep, ``services.incidents.escalations_send``).

It decides nothing about the event being routed: it keeps state, in ``commit``.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from events.catalog import Priority

from ..models import Escalation
from .base import Policy


class Escalations(Policy):
    name = "escalation"

    def apply(self, plan) -> None:
        plan.state[self.name] = [
            (event_plan.event, event_plan.routing.rule.escalate) for event_plan in plan.live()
            if event_plan.event.priority in Priority.IMMEDIATE
            and event_plan.routing.rule is not None and event_plan.routing.rule.escalate]

    def commit(self, plan) -> None:
        """One insert for the batch."""
        now = timezone.now()
        minute = timedelta(seconds=settings.DATAFI_ESCALATION_MINUTE_SECONDS)
        Escalation.objects.bulk_create([
            Escalation(event=event, channels=list(escalate["channels"]),
                       emails=list(escalate.get("emails") or []),
                       due_at=now + escalate["after_minutes"] * minute)
            for event, escalate in plan.state.get(self.name, ())])
