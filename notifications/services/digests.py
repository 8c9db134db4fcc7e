"""Digests: claim a bucket's pending items into one digest per (channel, target), send them.

In-process channels (the bell) write their digests in the flush (``write_digests``), which
is what makes them exactly-once; external channels' digests are deliveries of their own
(with the digest's id), sent by the delivery pipeline after the claim commits.
"""

import json
import logging
import uuid
from dataclasses import dataclass
from functools import partial

from celery import current_app
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from channels_app.backends import ChannelBackend, registered_backends
from config import control_plane
from core.errors import ApplicationError
from events.exceptions import BrokerUnavailable

from ..deliveries.enqueue import deliveries_enqueue
from ..models import PRIORITY_BY_BUCKET, Bucket, Delivery, Digest

logger = logging.getLogger(__name__)


def digest_backends() -> list[ChannelBackend]:
    """The channels whose medium, low and info items a flush claims into digests."""
    return [backend for backend in registered_backends() if backend.sends_digests]


@dataclass
class FlushResult:
    bucket: str
    claimed_items: int = 0
    digests_sent: int = 0  # in-app digests written
    digests_enqueued: int = 0  # external channels' digests handed to digest_send


@dataclass
class ClaimResult:
    items: int = 0
    digests_enqueued: int = 0


def digest_claim(*, bucket: str) -> ClaimResult:
    """Claim every pending item of ``bucket`` into one new digest per (channel, recipient).

    Commits on return. One claim per bucket at a time: a concurrent claim of the same
    bucket returns at once with nothing (the running one takes every item it sees), so no
    item is ever in two digests. On PostgreSQL the claim is one statement whatever the
    number of items (the items never come into Python); elsewhere one query per recipient.
    An external channel's digests get a delivery each (with the digest's id), enqueued to
    ``digest_send`` once this commits.
    """
    channels = [backend.name for backend in digest_backends()]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            if not _claim_lock(bucket):
                return ClaimResult()
            items, digests = _claim_postgresql(bucket=bucket, channels=channels)
        else:  # SQLite: writers are serialized by the IMMEDIATE transaction already
            items, digests = _claim_portable(bucket=bucket, channels=channels)
        # An external channel sends each digest as a delivery of its own, under the digest's
        # id, through the same pipeline as immediate sends (retries, attempts, sweep).
        now = timezone.now()
        external = {backend.name for backend in digest_backends() if backend.external}
        sends = Delivery.objects.bulk_create(
            [Delivery(id=digest_id, kind=Delivery.Kind.DIGEST, digest_id=digest_id,
                      channel=channel, user_id=user_id, target=target, target_data=target_data,
                      priority=PRIORITY_BY_BUCKET[bucket], bucket=bucket, next_attempt_at=now)
             for digest_id, channel, target, user_id, target_data in digests
             if channel in external],
            batch_size=1000,
        )
        deliveries_enqueue(sends)
    return ClaimResult(items=items, digests_enqueued=len(sends))


def _claim_lock(bucket: str) -> bool:
    """Take this transaction's claim lock of ``bucket``; False if another claim holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                       [_CLAIM_LOCK_CLASS, Bucket.values.index(bucket)])
        return cursor.fetchone()[0]


_CLAIM_LOCK_CLASS = 0x44696773  # "Digs": the advisory lock space of digest claims

# Each item's digest id is a hash of the claim's token and the item's (channel, target), so
# the items are claimed in one pass and grouped into digests from what the UPDATE returns:
# no join of the items back to their digests (whose plan, on the fresh and unanalyzed rows
# of a busy bucket, was a nested loop of items x digests). A target's user and data are the
# same on all its items (the backend derives them from the target); the group keeps one.
_CLAIM_SQL = """
WITH claimed AS (
    UPDATE {delivery}
    SET status = %(sending)s, updated_at = %(now)s,
        digest_id = md5(concat_ws('|', %(token)s::text, channel, target))::uuid
    WHERE status = %(pending)s AND bucket = %(bucket)s AND channel = ANY(%(channels)s)
    RETURNING digest_id, channel, target, user_id, target_data
), created AS (
    INSERT INTO {digest} (id, channel, bucket, target, user_id, target_data, status,
                          item_count, attempts, last_error, created_at)
    SELECT digest_id, channel, %(bucket)s, target, max(user_id),
           (array_agg(target_data))[1], %(claimed)s, count(*), 0, '', %(now)s
    FROM claimed
    GROUP BY digest_id, channel, target
    RETURNING id, channel, target, user_id, target_data, item_count
)
SELECT (SELECT sum(item_count) FROM created), id, channel, target, user_id, target_data
FROM created
"""


def _claim_postgresql(*, bucket: str, channels: list[str]) -> tuple[int, list[tuple]]:
    """Claim the items and create their digests in one statement (one snapshot)."""
    sql = _CLAIM_SQL.format(delivery=Delivery._meta.db_table, digest=Digest._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, {
            "bucket": bucket, "channels": list(channels), "now": timezone.now(),
            "token": uuid.uuid4().hex, "pending": Delivery.Status.PENDING,
            "sending": Delivery.Status.SENDING, "claimed": Digest.Status.CLAIMED,
        })
        rows = cursor.fetchall()
    items = rows[0][0] if rows else 0
    return items, [(pk, channel, target, user_id, _json(data))
                   for _, pk, channel, target, user_id, data in rows]


def _json(value):
    """A JSON value as the ORM would hand it back (raw SQL returns the text)."""
    return json.loads(value) if isinstance(value, str) else value


def _claim_portable(*, bucket: str, channels: list[str]) -> tuple[int, list[tuple]]:
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING, bucket=bucket,
                                      channel__in=channels)
    groups = list(pending.values_list("channel", "target").annotate(
        n=Count("pk"), user_id=Max("user_id")).order_by())
    data = {(channel, target): target_data for channel, target, target_data
            in pending.values_list("channel", "target", "target_data")}
    digests = Digest.objects.bulk_create(
        [Digest(channel=channel, bucket=bucket, target=target, user_id=user_id,
                target_data=data.get((channel, target)), item_count=n)
         for channel, target, n, user_id in groups],
        batch_size=500,
    )
    items = 0
    for digest in digests:
        items += pending.filter(channel=digest.channel, target=digest.target).update(
            digest=digest, status=Delivery.Status.SENDING, updated_at=timezone.now())
    return items, [(d.pk, d.channel, d.target, d.user_id, d.target_data) for d in digests]


def digest_flush_enqueue(*, bucket: str) -> None:
    """Have a worker flush ``bucket`` (the ``digest_flush`` task) once the caller commits.

    Raises ``ApplicationError`` for an unknown bucket, and ``BrokerUnavailable`` when the
    broker does not answer: the caller asked for a flush now; the periodic one still runs.
    """
    bucket_check(bucket)
    transaction.on_commit(partial(_digest_flush_publish, bucket=bucket), robust=False)


def _digest_flush_publish(*, bucket: str) -> None:
    try:
        current_app.send_task(control_plane.DIGEST_FLUSH, kwargs={"bucket": bucket},
                              retry=False)
    except Exception as exc:  # the broker's failure, told to the caller as such
        logger.warning("flush of %s not queued: %r", bucket, exc)
        raise BrokerUnavailable(
            "The task broker does not answer, so the flush could not be queued; the periodic "
            f"flush sends the {bucket} items once it is back."
        ) from None


def bucket_check(bucket: str) -> None:
    """Refuse (``ApplicationError`` naming ``bucket``) anything but a digest bucket."""
    if bucket not in Bucket.values:
        raise ApplicationError(
            f"unknown bucket {bucket!r}; choose from {', '.join(Bucket.values)}", field="bucket"
        )


def digest_flush(*, bucket: str) -> FlushResult:
    """Send the bucket's pending items as digests, each item exactly once.

    First claims what is pending (committed), then writes the in-app digests, which
    includes digests claimed by an earlier flush that died before writing them (same id):
    an in-app digest's notification and its "delivered" commit together, so it is
    exactly-once without a task. External channels' digests (email) are sent by one
    ``digest_send`` task each, enqueued when the claim commits; one lost by a crash is
    sent by the delivery sweep, under the same id.
    Safe to run concurrently with itself.
    """
    bucket_check(bucket)
    result = FlushResult(bucket=bucket)
    claim = digest_claim(bucket=bucket)
    result.claimed_items, result.digests_enqueued = claim.items, claim.digests_enqueued
    for backend in digest_backends():
        if not backend.external:
            result.digests_sent += backend.write_digests(bucket=bucket)
    if result.claimed_items or result.digests_sent:
        logger.info("digest flush %s: %d items claimed, %d digests sent, %d enqueued",
                    bucket, result.claimed_items, result.digests_sent, result.digests_enqueued)
    return result
