"""An event type whose notifications are disabled delivers nothing (the event is logged).

``emit()`` already logs such events as suppressed without routing them; this covers an
event type disabled between an event's emit and its routing.
"""

from events.models import Event

from ..routing.plan import Decision, Verdict
from .base import Policy


class EventTypeDisabled(Policy):
    name = "event_type_disabled"

    def apply(self, plan) -> None:
        for event_plan in plan.live():
            event_type = event_plan.event.event_type
            if not event_type.enabled:
                plan.stop_event(event_plan, Verdict(
                    decision=Decision.DISABLED, policy=self.name,
                    detail=f"Notifications of {event_type.key} are disabled."),
                    status=Event.Status.SUPPRESSED)
