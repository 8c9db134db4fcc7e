"""Retention: what is older than ``DATAFI_RETENTION_DAYS`` and finished is deleted.

An event goes with its notifications, deliveries and their attempts (and its repeat group
and escalation) once it is older than
the window, routed (or failed), and none of its deliveries is still to be sent (pending,
waiting for a retry or in a digest bucket, or sending). A digest goes with its notifications
and its own deliveries once it is older than the window, no longer claimed by a flush, and
nothing still to be sent refers to it. Whatever is unfinished stays, however old, so
retention never loses a notification on its way; it goes in a later purge once finished.
Unread notifications go too: the window is the history the bell keeps.

Set-based and in chunks: each chunk of up to ``chunk_size`` events (then digests), oldest
first, is deleted in one short transaction of a fixed number of statements, whatever the
number of notifications and deliveries hanging off them. Every statement checks again what
it deletes (a delivery retried by hand meanwhile is pending again and keeps its event), so
a purge may overlap with routing, sending, flushing and another purge.

Run hourly by beat (``notifications.retention_purge``), or ``manage.py retention_purge``.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from events.models import Event
from events.services.lifecycle import events_delete

from .models import (
    Delivery,
    DeliveryAttempt,
    Digest,
    Escalation,
    Notification,
    NotificationGroup,
)

logger = logging.getLogger(__name__)

#: Deliveries in these states are still to be sent: they keep their event or digest.
UNFINISHED = (Delivery.Status.PENDING, Delivery.Status.SENDING)


@dataclass
class PurgeResult:
    cutoff: object = None
    deleted: dict[str, int] = field(default_factory=lambda: {
        "events": 0, "digests": 0, "notifications": 0, "deliveries": 0, "attempts": 0})

    def add(self, counts: dict[str, int]) -> None:
        for name, count in counts.items():
            self.deleted[name] += count

    def __str__(self) -> str:
        if self.cutoff is None:
            return "retention is off (DATAFI_RETENTION_DAYS=0): nothing deleted"
        counts = ", ".join(f"{count} {name}" for name, count in self.deleted.items())
        return f"deleted what finished before {self.cutoff.isoformat()}: {counts}"


@dataclass(frozen=True)
class _Owner:
    """Rows that notifications and deliveries hang off (events, digests), and what keeps one."""

    name: str  # the count's name in PurgeResult
    table: str  # its key in _TABLES
    model: type
    busy_status: str  # this status keeps a row whatever its deliveries
    column: str  # the notifications' and deliveries' column pointing to it
    held: Callable[[], object]  # an Exists: a delivery keeping the row (OuterRef("pk"))
    deliveries: str  # SQL on ``d``: its deliveries, with ``{ids}`` for the IN list
    delete: Callable[[list], int]  # deletes the finished rows of ids no delivery points to
    #: Bookkeeping rows that go with it (``_TABLES`` key, column): groups, escalations.
    bookkeeping: tuple[tuple[str, str], ...] = ()


EVENTS = _Owner(
    name="events", table="event", model=Event, busy_status=Event.Status.PENDING, column="event_id",
    held=lambda: Exists(Delivery.objects.filter(event=OuterRef("pk"), status__in=UNFINISHED)),
    deliveries="d.event_id IN ({ids})",
    delete=lambda ids: events_delete(  # events' own service: the only writer of events
        event_ids=ids, unless_referenced_by=[(Delivery._meta.db_table, "event_id")]),
    bookkeeping=(("group", "first_event_id"), ("escalation", "event_id")))
DIGESTS = _Owner(
    name="digests", table="digest", model=Digest, busy_status=Digest.Status.CLAIMED,
    column="digest_id",
    # Kept: a digest with a send still to go, or listing an event that is kept.
    held=lambda: Exists(Delivery.objects.filter(
        Q(status__in=UNFINISHED) | Q(kind=Delivery.Kind.EVENT), digest=OuterRef("pk"))),
    deliveries="d.kind = 'digest' AND d.digest_id IN ({ids})",
    delete=lambda ids: _execute(
        f"DELETE FROM {{digest}} WHERE id IN ({_in(ids)}) AND status <> %s AND NOT EXISTS "
        "(SELECT 1 FROM {delivery} d WHERE d.digest_id = {digest}.id)",
        [*ids, Digest.Status.CLAIMED]))


def retention_purge(*, days: int | None = None, chunk_size: int = 500) -> PurgeResult:
    """Delete the finished events and digests older than ``days`` (default
    ``DATAFI_RETENTION_DAYS``; 0 keeps everything), with everything hanging off them."""
    days = settings.DATAFI_RETENTION_DAYS if days is None else days
    if days < 0:
        raise ValueError(f"retention days must be 0 (keep everything) or more, not {days}")
    result = PurgeResult()
    if days == 0:
        return result
    result.cutoff = timezone.now() - timedelta(days=days)
    for owner in (EVENTS, DIGESTS):
        while True:
            found, counts = _chunk_purge(owner, result.cutoff, chunk_size)
            result.add(counts)
            # A chunk is only what can go; one that lost every row to a concurrent change
            # (a retry by hand) ends this purge rather than finding the same rows again.
            if found < chunk_size or not counts.get(owner.name):
                break
    if any(result.deleted.values()):
        logger.info("retention: %s", result)
    return result


_TABLES = {
    "event": Event._meta.db_table,
    "notification": Notification._meta.db_table,
    "delivery": Delivery._meta.db_table,
    "attempt": DeliveryAttempt._meta.db_table,
    "digest": Digest._meta.db_table,
    "group": NotificationGroup._meta.db_table,
    "escalation": Escalation._meta.db_table,
}


def _in(ids: list) -> str:
    return ", ".join(["%s"] * len(ids))


def _execute(sql: str, params) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_TABLES), params)
        return cursor.rowcount


def _finished_deliveries_purge(where: str, ids: list) -> dict[str, int]:
    """Delete the finished deliveries ``where`` selects (SQL on ``d``, one ``IN`` of ids),
    and their attempts."""
    finished = f"{where} AND d.status NOT IN (%s, %s)"
    params = [*ids, *UNFINISHED]
    attempts = _execute(
        "DELETE FROM {attempt} WHERE delivery_id IN "
        f"(SELECT d.id FROM {{delivery}} d WHERE {finished})", params)
    deliveries = _execute(
        f"DELETE FROM {{delivery}} WHERE id IN (SELECT d.id FROM {{delivery}} d WHERE {finished})",
        params)
    return {"deliveries": deliveries, "attempts": attempts}


def _chunk_purge(owner: _Owner, cutoff, chunk_size: int) -> tuple[int, dict[str, int]]:
    """Delete up to ``chunk_size`` of ``owner``'s oldest rows that can go, with their
    finished deliveries and attempts, and their notifications; one transaction."""
    ids = list(
        owner.model.objects.filter(created_at__lt=cutoff).exclude(status=owner.busy_status)
        .exclude(owner.held()).order_by("created_at").values_list("pk", flat=True)[:chunk_size])
    if not ids:
        return 0, {}
    ids = [owner.model._meta.pk.get_db_prep_value(pk, connection) for pk in ids]
    marks, table, column = _in(ids), "{" + owner.table + "}", owner.column
    with transaction.atomic():
        counts = _finished_deliveries_purge(owner.deliveries.format(ids=marks), ids)
        # Foreign keys are checked at commit: the row goes first, then what pointed to it.
        counts[owner.name] = owner.delete(ids)
        counts["notifications"] = _execute(
            f"DELETE FROM {{notification}} WHERE {column} IN ({marks}) AND NOT EXISTS "
            f"(SELECT 1 FROM {table} o WHERE o.id = {{notification}}.{column})", ids)
        for other, other_column in owner.bookkeeping:
            _execute(f"DELETE FROM {{{other}}} WHERE {other_column} IN ({marks}) AND NOT EXISTS "
                     f"(SELECT 1 FROM {table} o WHERE o.id = {{{other}}}.{other_column})", ids)
    return len(ids), counts
