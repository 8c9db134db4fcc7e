"""An event's lifecycle after emit: the only code that writes an event.

pending -> routed (or the status a delivery policy gave the whole event, e.g. suppressed)
        -> failed (routing gave up after its retries)
then acknowledged, escalated, resolved (by hand, or by an event that resolves it), and,
once finished and older than the retention window, deleted.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BigIntegerField, Case, CharField, JSONField, UUIDField, Value, When
from django.utils import timezone

from ..models import Event

logger = logging.getLogger(__name__)

#: What routing may leave an event as.
ROUTED_STATUSES = frozenset({Event.Status.ROUTED, Event.Status.SUPPRESSED,
                             Event.Status.SILENCED, Event.Status.GROUPED,
                             Event.Status.INHIBITED})


@dataclass(frozen=True)
class RoutingOutcome:
    """What routing decided for one event: its status, and the channels and the rule
    (``source``) that chose them, as routing describes them (explain reads them back)."""

    event_id: object
    status: str = Event.Status.ROUTED
    channels: list[str] = field(default_factory=list)
    source: str = ""
    silenced_by: int | None = None  # silenced: the silence's id
    grouped_into: object = None  # grouped: the first event of its group
    inhibited_by: object = None  # inhibited: the unresolved source event


def events_mark_routed(outcomes: Iterable[RoutingOutcome]) -> int:
    """Record routing's outcome of pending events; one UPDATE for any number of them.

    Must run in the transaction that routed them (which holds their locks). Returns how
    many were marked.
    """
    outcomes = list(outcomes)
    if not outcomes:
        return 0
    for outcome in outcomes:
        if outcome.status not in ROUTED_STATUSES:
            raise ValueError(f"routing cannot leave an event {outcome.status!r}")
    values = {"routed_at": timezone.now(), "next_sweep_at": None, "last_error": ""}
    for name, attribute, output in (("status", "status", CharField()),
                                    ("routed_channels", "channels", JSONField()),
                                    ("routing_source", "source", CharField()),
                                    ("silenced_by", "silenced_by", BigIntegerField()),
                                    ("grouped_into", "grouped_into", UUIDField()),
                                    ("inhibited_by", "inhibited_by", UUIDField())):
        distinct = {_key(getattr(o, attribute)) for o in outcomes}
        if len(distinct) == 1:
            values[name] = _value(getattr(outcomes[0], attribute), output)
        else:  # one statement still: a CASE over the ids (a value, never a column name)
            values[name] = Case(*(When(pk=o.event_id, then=Value(getattr(o, attribute),
                                                                  output_field=output))
                                  for o in outcomes), output_field=output)
    return Event.objects.filter(pk__in=[o.event_id for o in outcomes],
                                status=Event.Status.PENDING).update(**values)


def _key(value):
    return tuple(value) if isinstance(value, list) else value


def _value(value, output):
    if isinstance(output, JSONField) or value is None:
        return Value(value, output_field=output)
    return value


def event_mark_failed(*, event_id, error: str) -> bool:
    """Give up on routing a pending event: status ``failed`` with ``error``; idempotent.

    For a routing task that failed for an unexpected reason after its bounded retries. The
    outbox sweep only re-enqueues pending events, so a failed one is not retried forever.
    Returns whether the event was marked (False: unknown, or no longer pending).
    """
    marked = Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
        status=Event.Status.FAILED, last_error=error[:2000], next_sweep_at=None
    )
    if marked:
        logger.error("event %s: routing failed for good: %s", event_id, error[:500])
    return bool(marked)


def event_mark_route_error(*, event_id, error: str) -> None:
    """Say why a pending event's routing failed while it is retried on its own; batched
    routing does not claim an event with an error."""
    Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
        last_error=error[:2000])


def events_delete(*, event_ids: list, unless_referenced_by: Iterable[tuple[str, str]] = ()
                  ) -> int:
    """Delete the finished events among ``event_ids`` (never a pending one), except those a
    row of the given ``(table, column)`` pairs still points to. For retention, inside its
    chunk's transaction: the upper layers name the tables that refer to events."""
    if not event_ids:
        return 0
    marks = ", ".join(["%s"] * len(event_ids))
    table = Event._meta.db_table
    kept = "".join(f" AND NOT EXISTS (SELECT 1 FROM {other} r WHERE r.{column} = {table}.id)"
                   for other, column in unless_referenced_by)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({marks}) AND status <> %s{kept}",
                       [*event_ids, Event.Status.PENDING])
        return cursor.rowcount


def event_acknowledge(*, event_id, user=None, name: str = "") -> bool:
    """Acknowledge an event for everyone; the first acknowledgement wins (a concurrent or
    later one changes nothing). ``name`` says who (a username, or the address whose email
    link was used). Returns whether this call acknowledged it."""
    return bool(Event.objects.filter(pk=event_id, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user,
        acknowledged_by_name=(name or getattr(user, "username", ""))[:254]))


def events_resolve(*, event_ids, user=None, by_event=None) -> list:
    """Resolve those of ``event_ids`` not resolved yet, by ``user`` (by hand) or by the event
    ``by_event`` (an id); returns the ids resolved by this call, so a resolution racing
    another one has its effects once. Must run inside a transaction."""
    pending = list(Event.objects.select_for_update().filter(
        pk__in=list(event_ids), resolved_at__isnull=True).values_list("pk", flat=True))
    if pending:
        Event.objects.filter(pk__in=pending).update(
            resolved_at=timezone.now(), resolved_by=user, resolved_by_event=by_event)
    return pending


def events_mark_escalated(*, event_ids) -> int:
    """Say that these events were sent again, nobody having acknowledged them."""
    return Event.objects.filter(pk__in=list(event_ids), escalated_at__isnull=True).update(
        escalated_at=timezone.now())
