"""A user's own mutes: a muted event type, category or workspace reaches them on no channel
until the mute ends (never a critical event: ``CriticalAlways`` protects those)."""

from django.db.models import Q
from django.utils import timezone

from ..models import Mute
from ..routing.plan import Decision, Scope, Verdict
from .base import Policy, audience_filter, user_routes


class Mutes(Policy):
    name = "mutes"
    scope = Scope.USER

    def apply(self, plan) -> None:
        """One query for the batch: the active mutes of the audience's users that name one
        of the batch's event types, categories or workspaces."""
        routes = user_routes(plan)
        if not routes:
            return
        events = {route.event.pk: route.event for route in routes}.values()
        now = timezone.now()
        rows = Mute.objects.filter(
            audience_filter(events), Q(until__isnull=True) | Q(until__gt=now),
            Q(event_type_id__in={e.event_type_id for e in events})
            | Q(category_id__in={e.event_type.category_id for e in events})
            | Q(workspace_id__in={e.workspace_id for e in events if e.workspace_id}),
        ).values_list("user_id", "event_type_id", "category_id", "workspace_id", "until")
        muted: dict[int, list] = {}
        for user_id, *mute in rows:
            muted.setdefault(user_id, []).append(mute)
        if not muted:
            return
        for route in routes:
            event = route.event
            for recipient in route.recipients:
                for type_id, category_id, workspace_id, until in muted.get(recipient.user_id,
                                                                            ()):
                    what = ("event type" if type_id == event.event_type_id
                            else "category" if category_id == event.event_type.category_id
                            else "workspace" if workspace_id and workspace_id == event.workspace_id
                            else None)
                    if what:
                        end = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
                        plan.decide(route, recipient, Verdict(
                            decision=Decision.MUTED, policy=self.name, scope=self.scope,
                            detail=f"The user muted this {what}{end}."))
                        break
