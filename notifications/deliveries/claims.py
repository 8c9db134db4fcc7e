"""Claiming sends: pending -> sending with the next attempt number and an attempt row,
committed before anything leaves the process (``send``)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from core.joined import Joined
from events.models import Category, Event, EventType, Workspace

from ..models import SENT_ALONE, Delivery, DeliveryAttempt

#: A task may arrive this early for its due time (clocks of web and worker processes).
DUE_TOLERANCE = timedelta(seconds=1)


@dataclass
class Attempt:
    delivery: Delivery
    record: DeliveryAttempt
    emitted_at: object = None  # its event's emit time (the latency metric), when loaded


def due(deliveries, now):
    return deliveries.filter(Q(next_attempt_at__isnull=True)
                             | Q(next_attempt_at__lte=now + DUE_TOLERANCE))


def claim(pks: list, *, now, channel: str | None = None) -> list[Attempt]:
    """pending -> sending with the next attempt number, for each delivery of ``pks`` (on
    ``channel``, if given) still pending, due and sent by itself (``SENT_ALONE``); one
    attempt row each; in ``pks``'s order, with its event, event type, category and
    workspace loaded (one instance per event). Inside the caller's transaction (on
    PostgreSQL one statement, so autocommit will do), which commits before anything leaves
    the process, without waiting for disk (``execute_without_waiting_for_disk``)."""
    if connection.vendor == "postgresql":
        return _claim_returning(pks, now=now, channel=channel)
    # One conditional UPDATE each: whatever it counts is exactly what was claimed.
    claimable = due(Delivery.objects.filter(SENT_ALONE, status=Delivery.Status.PENDING), now)
    if channel is not None:
        claimable = claimable.filter(channel=channel)
    claimed = [pk for pk in pks if claimable.filter(pk=pk).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1,
        sending_started_at=now, next_attempt_at=None, updated_at=now)]
    if not claimed:
        return []
    found = Delivery.objects.select_related(*_EVENT_RELATED).in_bulk(claimed)
    fresh = [found[pk] for pk in map(Delivery._meta.pk.to_python, claimed)]
    records = DeliveryAttempt.objects.bulk_create([
        DeliveryAttempt(delivery=delivery, number=delivery.attempts, started_at=now)
        for delivery in fresh])
    return [Attempt(delivery=delivery, record=record)
            for delivery, record in zip(fresh, records, strict=True)]


def claim_committed(pks: list, *, now, channel: str | None = None) -> list[Attempt]:
    """``claim`` in a transaction of its own, committed on return (on PostgreSQL the one
    statement's own: no BEGIN and COMMIT round trips)."""
    if connection.vendor == "postgresql":
        return claim(pks, now=now, channel=channel)
    with transaction.atomic():
        return claim(pks, now=now, channel=channel)


_EVENT_RELATED = ("event__event_type__category", "event__workspace")
_CLAIMED = Joined((Delivery, "c"), (Event, "e"), (EventType, "t"), (Category, "k"),
                  (Workspace, "w"))


def _claim_returning(pks: list, *, now, channel: str | None) -> list[Attempt]:
    """The same claim as one statement and one round trip: the rows taken, their attempt
    rows written, both returned, with their events (``core.joined``)."""
    deliveries, attempts = Delivery._meta, DeliveryAttempt._meta
    blank = [f for f in attempts.concrete_fields
             if f.column not in ("id", "delivery_id", "number", "started_at")]
    sql = (
        f"WITH c AS (UPDATE {deliveries.db_table} SET status = %s, "  # noqa: S608
        "attempts = attempts + 1, sending_started_at = %s, next_attempt_at = NULL, "
        "updated_at = %s WHERE id = ANY(%s) AND status = %s AND (kind = %s OR bucket = '') "
        f"{'AND channel = %s ' if channel is not None else ''}"
        "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) RETURNING *), "
        f"a AS (INSERT INTO {attempts.db_table} (delivery_id, number, started_at"
        f"{''.join(', ' + f.column for f in blank)}) SELECT id, attempts, %s"
        f"{', %s' * len(blank)} FROM c RETURNING id, delivery_id) "
        f"SELECT {_CLAIMED.select()}, a.id FROM c JOIN a ON a.delivery_id = c.id "
        f"LEFT JOIN {Event._meta.db_table} e ON e.id = c.event_id "
        f"LEFT JOIN {EventType._meta.db_table} t ON t.id = e.event_type_id "
        f"LEFT JOIN {Category._meta.db_table} k ON k.id = t.category_id "
        f"LEFT JOIN {Workspace._meta.db_table} w ON w.id = e.workspace_id")
    params = [Delivery.Status.SENDING, now, now, [str(pk) for pk in pks],
              Delivery.Status.PENDING, Delivery.Kind.DIGEST,
              *([channel] if channel is not None else []), now + DUE_TOLERANCE, now,
              *(f.get_db_prep_save(f.get_default(), connection) for f in blank)]
    with connection.cursor() as cursor:
        execute_without_waiting_for_disk(cursor, sql, params)
        rows = cursor.fetchall()
    taken, events = {}, {}  # an audience's deliveries share their event's instance
    for row in rows:
        delivery, event, event_type, category, workspace = _CLAIMED.build(row, shared=events)
        if event is not None:
            event_type.category = category
            event.event_type, event.workspace = event_type, workspace
            delivery.event = event
        record = DeliveryAttempt(pk=row[-1], delivery=delivery, number=delivery.attempts,
                                 started_at=now)
        record._state.adding = False
        taken[str(delivery.pk)] = Attempt(delivery=delivery, record=record)
    return [taken[pk] for pk in dict.fromkeys(map(str, pks)) if pk in taken]


#: A batch still sending renews its claim on the rows it has not sent at least this often
#: (``claims_renew``), so the sweep never takes them back from a long batch: each message
#: then starts within this many seconds of a renewal and ends within the channel's own
#: timeout (<= 300 s), well inside ``DATAFI_SENDING_TIMEOUT_SECONDS`` (330).
RENEW_SECONDS = 10


def claims_renew(attempts: list[Attempt], *, now) -> set[str]:
    """Stamp ``now`` as the send start of ``attempts``' deliveries that are still theirs
    (``sending`` with that attempt number; the sweep may have given a row to a new attempt
    while this worker was stopped); returns those ids. Row locks keep the sweep off them
    meanwhile."""
    numbers = {str(a.delivery.pk): a.record.number for a in attempts}
    with transaction.atomic():
        ours = [str(pk) for pk, number in Delivery.objects.select_for_update()
                .filter(pk__in=list(numbers), status=Delivery.Status.SENDING)
                .values_list("pk", "attempts") if numbers.get(str(pk)) == number]
        Delivery.objects.filter(pk__in=ours).update(sending_started_at=now)
    return set(ours)


_NO_DISK_WAIT = "SET LOCAL synchronous_commit TO OFF"


def commit_without_waiting_for_disk() -> None:
    """On PostgreSQL, this transaction's commit does not wait for its WAL to reach disk
    (``synchronous_commit = off``, for this transaction only): claiming or recording a send
    costs no fsync per message. Only a crash of the database server itself within a
    fraction of a second can lose such a write, and what it loses is what a worker's crash
    loses: a lost record leaves the row ``sending`` (the sweep takes it back), a lost claim
    leaves it ``pending`` (the sweep enqueues it); either way a message that was out is
    sent once more with the same Message-ID. Routing's commits stay durable: they create
    the deliveries (and their ids) that such a resend reuses."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_NO_DISK_WAIT)


def execute_without_waiting_for_disk(cursor, sql: str, params) -> None:
    """Execute one statement of the send path whose commit need not wait for disk (see
    ``commit_without_waiting_for_disk``), in one round trip: on PostgreSQL the setting and
    the statement go together (in autocommit they are one implicit transaction) and the
    cursor is left on the statement's result."""
    if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get(
            "server_side_binding"):  # one statement per execute there
        cursor.execute(sql, params)
        return
    cursor.execute(f"{_NO_DISK_WAIT}; {sql}", params)
    cursor.nextset()
