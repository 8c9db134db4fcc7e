"""Resolution: an event of a type that ``resolves`` others resolves every unresolved event of
those types in its workspace with equal ``group_by`` values (the resolved type's): e.g.
``connection_established`` resolves ``connection_lost`` of the same data source.

It decides nothing about the event being routed (it is delivered as usual): it keeps state,
in ``commit``, in the routing transaction. What a resolution does (escalations cancelled,
receivers told) is ``services.incidents.events_resolved``.
"""

from django.db.models import Q
from django.db.models.fields.json import KeyTransform

from events.models import Event, EventType

from ..services.incidents import events_resolved
from .base import Policy


class Resolution(Policy):
    name = "resolution"

    def apply(self, plan) -> None:
        """No query: only which events of the batch resolve something."""
        plan.state[self.name] = [
            event_plan.event for event_plan in plan.events
            if event_plan.event.event_type.resolves
            and event_plan.status != Event.Status.SUPPRESSED]

    def commit(self, plan) -> None:
        """Two queries for the batch (the resolved types; their unresolved events with the
        resolving events' values, matched in SQL), then the resolutions' own writes."""
        resolving = [e for e in plan.state.get(self.name, ()) if e.workspace_id]
        if not resolving:
            return
        types = {t.key: t for t in EventType.objects.filter(
            key__in={key for event in resolving for key in event.event_type.resolves}
        ).only("pk", "key", "group_by")}
        keys = sorted({key for t in types.values() for key in t.group_by})
        aliases = {key: f"value_{index}" for index, key in enumerate(keys)}
        wanted, matches = Q(pk__in=[]), []
        for event in resolving:
            payload = event.payload if isinstance(event.payload, dict) else {}
            for key in event.event_type.resolves:
                target = types.get(key)
                if target is None or any(k not in payload for k in target.group_by):
                    continue  # what it would resolve is not named in its payload
                values = {aliases[k]: payload[k] for k in target.group_by}
                wanted |= Q(event_type_id=target.pk, workspace_id=event.workspace_id, **values)
                matches.append((event, target))
        if not matches:
            return
        candidates = (Event.objects.alias(**{alias: KeyTransform(key, "payload")
                                             for key, alias in aliases.items()})
                      .filter(wanted, resolved_at__isnull=True)
                      .exclude(status__in=[Event.Status.PENDING, Event.Status.FAILED])
                      .only("pk", "event_type_id", "workspace_id", "payload"))
        resolved = {}  # resolved event id -> the resolving event's id
        for candidate in candidates:
            resolver = next((event for event, target in matches
                             if target.pk == candidate.event_type_id
                             and event.workspace_id == candidate.workspace_id
                             and _same(candidate, event, target.group_by)), None)
            if resolver is not None:  # SQL and Python agree on equal JSON values
                resolved[candidate.pk] = resolver.pk
        by_event = {}
        for target, resolver in resolved.items():
            by_event.setdefault(resolver, []).append(target)
        for resolver, targets in by_event.items():
            events_resolved(event_ids=targets, by_event=resolver)


def _same(candidate, event, keys) -> bool:
    mine = candidate.payload if isinstance(candidate.payload, dict) else {}
    return all(key in mine and mine[key] == event.payload[key] for key in keys)
