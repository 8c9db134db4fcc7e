"""Inhibition: while an unresolved source event exists in a workspace, target events there
with equal payload values are kept as ``inhibited`` and delivered on no channel (an admin's
inhibit rules: the wave of query failures a lost data source sets off)."""

from events.models import Event

from ..models import InhibitRule
from ..routing.plan import Decision, Verdict
from .base import Policy

#: The newest unresolved source events a batch looks at, per batch.
SOURCES_READ = 1000


class Inhibition(Policy):
    name = "inhibition"

    def apply(self, plan) -> None:
        """One query for the batch at most: the unresolved source events of the rules that
        target one of its events, in its workspaces. The rules are read once per routing
        version (any write to them changes it)."""
        live = list(plan.live())
        if not live:
            return
        rules = plan.config.remembered(self.name, lambda: list(
            InhibitRule.objects.select_related("source_event_type")))
        targeted = [(event_plan, [rule for rule in rules if rule.targets(event_plan.event)])
                    for event_plan in live]
        targeted = [(event_plan, found) for event_plan, found in targeted if found]
        if not targeted:
            return
        sources = list(
            Event.objects.filter(
                event_type_id__in={r.source_event_type_id for _, found in targeted
                                   for r in found},
                workspace_id__in={p.event.workspace_id for p, _ in targeted},
                resolved_at__isnull=True,
                status__in=[Event.Status.ROUTED, Event.Status.GROUPED])
            .order_by("-created_at").only("pk", "event_type_id", "workspace_id", "payload")
            [:SOURCES_READ])
        for event_plan, found in targeted:
            event = event_plan.event
            for rule in found:
                source = next((s for s in sources
                               if s.event_type_id == rule.source_event_type_id
                               and rule.inhibited_by(event, s)), None)
                if source is not None:
                    plan.stop_event(event_plan, Verdict(
                        decision=Decision.INHIBITED, policy=self.name, by_id=str(source.pk),
                        detail=f"Inhibited by event {source.pk} "
                               f"({rule.source_event_type.key}), unresolved: {rule}."),
                        status=Event.Status.INHIBITED)
                    break
