"""Claiming sends: pending -> sending with the next attempt number and an attempt row,
committed before anything leaves the process (``send``)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
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


def claim(deliveries: list[Delivery], *, now) -> list[Attempt]:
    """pending -> sending with the next attempt number, for each of ``deliveries`` still
    pending and due; one attempt row each. Inside the caller's transaction, which commits
    before anything leaves the process."""
    if connection.vendor == "postgresql":
        claimed = _claim_returning([d.pk for d in deliveries], now=now)
    else:  # one conditional UPDATE each: whatever it counts is exactly what was claimed
        claimed = [d.pk for d in deliveries if due(Delivery.objects.filter(
            pk=d.pk, status=Delivery.Status.PENDING), now).update(
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


def _claim_returning(pks: list, *, now) -> list:
    """The same claim as one statement, saying which rows it took (in ``pks``'s order)."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, attempts = attempts + 1, "  # noqa: S608
            "sending_started_at = %s, next_attempt_at = NULL, updated_at = %s "
            "WHERE id = ANY(%s) AND status = %s "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) RETURNING id",
            [Delivery.Status.SENDING, now, now, [str(pk) for pk in pks],
             Delivery.Status.PENDING, now + DUE_TOLERANCE])
        taken = {str(row[0]) for row in cursor.fetchall()}
    return [pk for pk in pks if str(pk) in taken]


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
