"""Claiming sends: pending -> sending with the next attempt number and an attempt row,
committed before anything leaves the process (``send``)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from ..models import Delivery, DeliveryAttempt

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


def claim(pks: list, *, now) -> list[Attempt]:
    """pending -> sending with the next attempt number, for each delivery of ``pks`` still
    pending and due; one attempt row each; in ``pks``'s order. Inside the caller's
    transaction (on PostgreSQL one statement, so autocommit will do), which commits before
    anything leaves the process."""
    if connection.vendor == "postgresql":
        return _claim_returning(pks, now=now)
    # One conditional UPDATE each: whatever it counts is exactly what was claimed.
    claimed = [pk for pk in pks if due(Delivery.objects.filter(
        pk=pk, status=Delivery.Status.PENDING), now).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1,
            sending_started_at=now, next_attempt_at=None, updated_at=now)]
    if not claimed:
        return []
    fresh = Delivery.objects.in_bulk(claimed)
    records = DeliveryAttempt.objects.bulk_create([
        DeliveryAttempt(delivery=fresh[pk], number=fresh[pk].attempts, started_at=now)
        for pk in claimed])
    return [Attempt(delivery=fresh[pk], record=record)
            for pk, record in zip(claimed, records, strict=True)]


def claim_committed(pks: list, *, now) -> list[Attempt]:
    """``claim`` in a transaction of its own, committed on return (on PostgreSQL the one
    statement's own: no BEGIN and COMMIT round trips)."""
    if connection.vendor == "postgresql":
        return claim(pks, now=now)
    with transaction.atomic():
        return claim(pks, now=now)


def _claim_returning(pks: list, *, now) -> list[Attempt]:
    """The same claim as one statement and one round trip: the rows taken, their attempt
    rows written, both returned."""
    deliveries, attempts = Delivery._meta, DeliveryAttempt._meta
    columns = ", ".join(f"c.{f.column}" for f in deliveries.concrete_fields)
    blank = [f for f in attempts.concrete_fields
             if f.column not in ("id", "delivery_id", "number", "started_at")]
    sql = (
        f"WITH c AS (UPDATE {deliveries.db_table} SET status = %s, "  # noqa: S608
        "attempts = attempts + 1, sending_started_at = %s, next_attempt_at = NULL, "
        "updated_at = %s WHERE id = ANY(%s) AND status = %s "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) RETURNING *), "
        f"a AS (INSERT INTO {attempts.db_table} (delivery_id, number, started_at"
        f"{''.join(', ' + f.column for f in blank)}) SELECT id, attempts, %s"
        f"{', %s' * len(blank)} FROM c RETURNING id, delivery_id) "
        f"SELECT {columns}, a.id AS claimed_attempt_id FROM c JOIN a ON a.delivery_id = c.id")
    params = [Delivery.Status.SENDING, now, now, [str(pk) for pk in pks],
              Delivery.Status.PENDING, now + DUE_TOLERANCE, now,
              *(f.get_db_prep_save(f.get_default(), connection) for f in blank)]
    taken = {str(d.pk): d for d in Delivery.objects.raw(sql, params)}
    claimed = []
    for pk in map(str, pks):
        delivery = taken.get(pk)
        if delivery is not None:
            record = DeliveryAttempt(pk=delivery.claimed_attempt_id, delivery=delivery,
                                     number=delivery.attempts, started_at=now)
            record._state.adding = False
            claimed.append(Attempt(delivery=delivery, record=record))
    return claimed


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


def commit_without_waiting_for_disk() -> None:
    """On PostgreSQL, this transaction's commit does not wait for its WAL to reach disk
    (``synchronous_commit = off``, for this transaction only): recording an outcome costs
    no fsync per message. Only a crash of the database server itself within a fraction of
    a second can lose such a record; the claim (committed durably) then leaves the row
    ``sending``, and the sweep sends it again with the same Message-ID, as after a worker's
    crash."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
