"""Everything in notifications that writes: routing events, digests, reading state, rules."""

import logging
import uuid
from dataclasses import dataclass, field
from functools import partial

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from channels_app.backends import get_backend
from channels_app.models import Channel, DigestSetting
from events import task_names
from events.catalog import Priority
from events.exceptions import ApplicationError, BrokerUnavailable
from events.models import Category, Event, EventType
from events.services import event_enqueue, routing_request, routing_request_clear

from .channels import (
    DIGEST_SENDERS,
    ChannelRoute,
    digest_channels,
    digests_send,
    routes_record,
)
from .delivery import deliveries_enqueue
from .models import (
    PRIORITY_BY_BUCKET,
    Bucket,
    Delivery,
    Digest,
    Notification,
    NotificationPreference,
    RoutingRule,
)
from .selectors import (
    ROUTING_TOKEN_SQL,
    audiences_get,
    delivery_bucket,
    preference_opt_outs_get,
    routing_config_get,
)

logger = logging.getLogger(__name__)


# --- routing ------------------------------------------------------------------------------

@dataclass
class RouteResult:
    event_id: str
    channels: dict[str, int] = field(default_factory=dict)  # channel -> recipients
    skipped: bool = False


def _events_lock(*, where: str, params: list, tail: str = "", tail_params=(),
                 skip_locked: bool = False) -> list[Event]:
    """Lock the events ``where`` says (SQL on alias ``e``) and return them with their event
    type and category loaded, and ``routing_token``: the routing version token, read in
    the same query (so a warm cache costs no round trip).

    Written by hand: this query is most of a route's fixed cost, and the ORM's version of
    it costs three times as much in Python. Each value goes through the converters the ORM
    would apply (JSON, and on SQLite dates, UUIDs and booleans). Must be called inside a
    transaction; on SQLite, which has no row locks, the transaction's write lock serves.
    """
    lock = ""
    if connection.features.has_select_for_update:
        lock = " FOR UPDATE OF e" + (" SKIP LOCKED" if skip_locked else "")
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL.format(where=where, tail=tail, lock=lock),
                       [*params, *tail_params])
        rows = cursor.fetchall()
    converters = _row_converters()
    events = []
    for row in rows:
        values = []
        for value, (column, steps) in zip(row, converters, strict=False):
            for step in steps:
                value = step(value, column, connection)
            values.append(value)
        event, event_type, category = (
            model.from_db(connection.alias, None, values[start:stop])
            for model, start, stop in _LOCK_SLICES)
        event_type.category = category
        event.event_type = event_type
        event.routing_token = row[-1]
        events.append(event)
    return events


_LOCK_MODELS = ((Event, "e"), (EventType, "t"), (Category, "c"))
_LOCK_SLICES, _start = [], 0
for _model, _ in _LOCK_MODELS:
    _LOCK_SLICES.append((_model, _start, _start + len(_model._meta.concrete_fields)))
    _start += len(_model._meta.concrete_fields)
_LOCK_SQL = (
    "SELECT "
    + ", ".join(f'{alias}."{f.column}"' for model, alias in _LOCK_MODELS
                for f in model._meta.concrete_fields)
    + f", ({ROUTING_TOKEN_SQL}) FROM {Event._meta.db_table} e "
    f"JOIN {EventType._meta.db_table} t ON t.id = e.event_type_id "
    f"JOIN {Category._meta.db_table} c ON c.id = t.category_id "
    "WHERE {where}{tail}{lock}"
)
_converters_by_vendor: dict[str, list] = {}


def _row_converters() -> list[tuple]:
    """(column, converters) of each selected field, as the ORM's compiler applies them."""
    found = _converters_by_vendor.get(connection.vendor)
    if found is None:
        found = []
        for model, alias in _LOCK_MODELS:
            for f in model._meta.concrete_fields:
                column = f.get_col(alias)
                found.append((column, connection.ops.get_db_converters(column)
                              + column.get_db_converters(connection)))
        _converters_by_vendor[connection.vendor] = found
    return found


def event_route(*, event_id) -> RouteResult:
    """Route one event (``events_route`` for a batch of one); idempotent.

    Locks the event row and only routes a pending event, so a duplicate task or the outbox
    sweep re-enqueueing it routes it once. For the priority lane, the outbox sweep, and
    messages queued by a version that routed every event alone.
    """
    with transaction.atomic():
        pk = Event._meta.pk.get_db_prep_value(event_id, connection)
        event = next(iter(_events_lock(where="e.id = %s", params=[pk])), None)
        if event is None or event.status != Event.Status.PENDING:
            return RouteResult(event_id=str(event_id), skipped=True)
        return events_route([event], token=event.routing_token)[0]


def events_route(events: list[Event], *, token: str | None) -> list[RouteResult]:
    """Plan and record what ``events`` mean on each of their channels, set-based.

    The caller holds the events' row locks in its transaction and passes pending events
    only, with their event type and category loaded, and ``token``: the routing version
    read in the query that locked them. On PostgreSQL the number of queries does not
    depend on the number of events or of recipients (SQLite splits large inserts): the
    configuration (rules, digest switches, webhook endpoints) comes from the cache that
    token validates; one query (two when some events have no workspace) for every
    audience, one for the preference opt-outs, one insert of notifications, one of
    deliveries, one update of the events. Immediate in-app
    notifications are created here; batched priorities become pending deliveries in
    their digest bucket; immediate external deliveries are enqueued once this commits.

    Users' preferences apply here, once: a user who switched the event's category off on
    a channel gets nothing on it, now or in a digest; critical events reach everyone. A
    preference changed later does not touch what is already pending.
    """
    if not events:
        return []
    config = routing_config_get(token=token)
    audiences = audiences_get(events)
    opt_outs = preference_opt_outs_get(events)
    routes, results = [], []
    for event in events:
        result = RouteResult(event_id=str(event.pk))
        results.append(result)
        routing = config.rules.resolve(event.event_type, priority=event.priority)
        users = audiences[event.pk]
        extra_addresses = routing.rule.extra_emails if routing.rule is not None else []
        chosen = opt_outs and event.priority != Priority.CRITICAL
        category_id = event.event_type.category_id
        for channel in routing.channels:
            backend = get_backend(channel)
            if backend is None:
                logger.debug("event %s: channel %s has no backend installed", event.pk, channel)
                continue
            recipients = backend.recipients(users=users, extra_addresses=extra_addresses,
                                            endpoints=config.endpoints, event=event)
            if chosen:
                # After recipients(): a member's address that is also on a distribution
                # list stays the member's, so their choice holds for that copy too.
                recipients = [r for r in recipients
                              if (r.user_id, category_id, channel) not in opt_outs]
            bucket = delivery_bucket(priority=event.priority, channel=channel,
                                     switches=config.switches)
            routes.append(ChannelRoute(event=event, channel=channel, recipients=recipients,
                                       bucket=bucket))
            result.channels[channel] = len(recipients)
    written = routes_record(routes)
    deliveries_enqueue([d for d in written  # after commit: rows first, network later
                        if not d.bucket and get_backend(d.channel).external])
    Event.objects.filter(pk__in=[event.pk for event in events]).update(
        status=Event.Status.ROUTED, routed_at=timezone.now(), next_sweep_at=None, last_error="")
    return results


BATCHED_PRIORITIES = [p for p in Priority.VALUES if p not in Priority.IMMEDIATE]


@dataclass
class DrainResult:
    routed: int = 0
    batches: int = 0
    handed_over: int = 0  # events that failed in a batch and alone: each has its own task


def events_route_pending(*, batch_size: int | None = None) -> DrainResult:
    """Route every pending medium, low and info event, in batches; safe to run concurrently.

    First forgets the routing request (``events.services.routing_request_clear``), then
    repeats: claim up to ``batch_size`` (``DATAFI_ROUTING_BATCH_SIZE``) of the oldest
    pending batched events in one statement (``FOR UPDATE SKIP LOCKED``, so concurrent
    runs share the work), route them with ``events_route`` (a constant number of queries),
    commit; until a claim comes back short. A full claim first requests one more run, so
    a second worker process helps with a backlog.

    Why no event is left behind. An emit commits its event, then tries to set the request
    flag (``cache.add``). If it sets it, it publishes a run of its own. If the flag was set
    already, its event committed before this run deleted the flag (the delete came after
    that add), so every claim of this run, all after the delete, sees the event: pending,
    unless a concurrent run holds it (that run routes it) or routed it. A claim that comes
    back short has seen every unlocked pending event committed before it. The claim skips
    events another run holds locked, which that run routes; a run that dies releases its
    locks and its message comes back (acks_late). A request whose message is lost is
    covered by the outbox sweep, which routes each event alone.

    A batch that fails is routed again one event at a time, so one bad event does not hold
    back the others; an event that fails alone too gets its own ``event_route`` task (its
    bounded retries end with the event marked failed), and ``last_error`` says so
    meanwhile, which keeps the batches from claiming it again.
    """
    batch_size = batch_size or settings.DATAFI_ROUTING_BATCH_SIZE
    routing_request_clear()
    result = DrainResult()
    while True:
        claimed = []
        try:
            with transaction.atomic():
                claimed = _claim_pending(batch_size=batch_size)
                if len(claimed) == batch_size:
                    # Not about this transaction's rows: the helper claims what it finds
                    # committed and unlocked, so it may start at once.
                    routing_request()
                events_route(claimed, token=claimed[0].routing_token if claimed else None)
            result.routed += len(claimed)
        except Exception:  # some event of the batch cannot be routed: route them one by one
            if not claimed:
                raise
            logger.exception("routing %d events at once failed; one by one now", len(claimed))
            for event in claimed:
                result.routed += _route_alone_or_hand_over(event.pk, result)
        result.batches += 1
        if len(claimed) < batch_size:
            return result


def _claim_pending(*, batch_size: int) -> list[Event]:
    """Lock up to ``batch_size`` of the oldest pending batched events; commit to release."""
    return _events_lock(
        where=f"e.status = %s AND e.last_error = %s AND e.priority IN "
              f"({', '.join(['%s'] * len(BATCHED_PRIORITIES))})",
        params=[Event.Status.PENDING, "", *BATCHED_PRIORITIES],
        tail=" ORDER BY e.created_at LIMIT %s", tail_params=[batch_size], skip_locked=True)


def _route_alone_or_hand_over(event_id, result: DrainResult) -> int:
    """Route one event of a failed batch alone; if it fails, give it a task of its own."""
    try:
        return 0 if event_route(event_id=event_id).skipped else 1
    except Exception as exc:  # recorded on the event; the others go on
        error = f"{type(exc).__name__}: {exc}"
        logger.exception("event %s: routing failed; it gets a task of its own", event_id)
        Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
            last_error=f"Batched routing failed, retried alone: {error}"[:2000])
        event_enqueue(event_id=event_id, priority=Priority.MEDIUM)  # EVENT_ROUTE, not urgent
        result.handed_over += 1
        return 0


# --- digests ------------------------------------------------------------------------------

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
    channels = digest_channels()
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
        sends = Delivery.objects.bulk_create(
            [Delivery(id=digest_id, kind=Delivery.Kind.DIGEST, digest_id=digest_id,
                      channel=channel, user_id=user_id, address=address,
                      endpoint_id=endpoint_id, priority=PRIORITY_BY_BUCKET[bucket],
                      bucket=bucket, next_attempt_at=now)
             for digest_id, channel, user_id, address, endpoint_id in digests
             if get_backend(channel).external],
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

# Each item's digest id is a hash of the claim's token and the item's recipient, so the
# items are claimed in one pass and grouped into digests from what the UPDATE returns: no
# join of the items back to their digests (whose plan, on the fresh and unanalyzed rows of
# a busy bucket, was a nested loop of items x digests).
_CLAIM_SQL = """
WITH claimed AS (
    UPDATE {delivery}
    SET status = %(sending)s, updated_at = %(now)s,
        digest_id = md5(concat_ws('|', %(token)s::text, channel, coalesce(user_id::text, ''),
                                  coalesce(endpoint_id::text, ''), address))::uuid
    WHERE status = %(pending)s AND bucket = %(bucket)s AND channel = ANY(%(channels)s)
    RETURNING digest_id, channel, user_id, address, endpoint_id
), created AS (
    INSERT INTO {digest} (id, channel, bucket, user_id, address, endpoint_id, status,
                          item_count, attempts, last_error, created_at)
    SELECT digest_id, channel, %(bucket)s, user_id, address, endpoint_id, %(claimed)s,
           count(*), 0, '', %(now)s
    FROM claimed
    GROUP BY digest_id, channel, user_id, address, endpoint_id
    RETURNING id, channel, user_id, address, endpoint_id, item_count
)
SELECT (SELECT sum(item_count) FROM created), id, channel, user_id, address, endpoint_id
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
    return items, [row[1:] for row in rows]


def _claim_portable(*, bucket: str, channels: list[str]) -> tuple[int, list[tuple]]:
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING, bucket=bucket,
                                      channel__in=channels)
    groups = list(pending.values_list("channel", "user_id", "address", "endpoint_id")
                  .annotate(n=Count("pk")).order_by())
    digests = Digest.objects.bulk_create(
        [Digest(channel=channel, bucket=bucket, user_id=user_id, address=address,
                endpoint_id=endpoint_id, item_count=n)
         for channel, user_id, address, endpoint_id, n in groups],
        batch_size=500,
    )
    items = 0
    for digest in digests:
        items += pending.filter(channel=digest.channel, user_id=digest.user_id,
                                address=digest.address, endpoint_id=digest.endpoint_id).update(
            digest=digest, status=Delivery.Status.SENDING, updated_at=timezone.now())
    return items, [(d.pk, d.channel, d.user_id, d.address, d.endpoint_id) for d in digests]


def digest_flush_enqueue(*, bucket: str) -> None:
    """Have a worker flush ``bucket`` (the ``digest_flush`` task) once the caller commits.

    Raises ``ApplicationError`` for an unknown bucket, and ``BrokerUnavailable`` when the
    broker does not answer: the caller asked for a flush now; the periodic one still runs.
    """
    _check_bucket(bucket)
    transaction.on_commit(partial(_digest_flush_publish, bucket=bucket), robust=False)


def _digest_flush_publish(*, bucket: str) -> None:
    try:
        current_app.send_task(task_names.DIGEST_FLUSH, kwargs={"bucket": bucket}, retry=False)
    except Exception as exc:  # the broker's failure, told to the caller as such
        logger.warning("flush of %s not queued: %r", bucket, exc)
        raise BrokerUnavailable(
            "The task broker does not answer, so the flush could not be queued; the periodic "
            f"flush sends the {bucket} items once it is back."
        ) from None


def _check_bucket(bucket: str) -> None:
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
    _check_bucket(bucket)
    result = FlushResult(bucket=bucket)
    claim = digest_claim(bucket=bucket)
    result.claimed_items, result.digests_enqueued = claim.items, claim.digests_enqueued
    for channel in digest_channels():
        if channel in DIGEST_SENDERS:
            result.digests_sent += digests_send(channel=channel, bucket=bucket)
    if result.claimed_items or result.digests_sent:
        logger.info("digest flush %s: %d items claimed, %d digests sent, %d enqueued",
                    bucket, result.claimed_items, result.digests_sent, result.digests_enqueued)
    return result


# --- reading state ------------------------------------------------------------------------

# Every change of reading state also sets ``updated_at``: the bell's ETag follows it
# (``selectors.notification_version``).

def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = notification.updated_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def notification_mark_unread(*, notification: Notification) -> Notification:
    if notification.read_at is not None:
        notification.read_at = None
        notification.updated_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def notification_mark_all_read(*, user) -> int:
    """Mark all of ``user``'s unread notifications read; returns how many changed."""
    now = timezone.now()
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=now, updated_at=now
    )


def notifications_mark_read(*, user, ids) -> int:
    """Mark those of ``ids`` that are ``user``'s own and unread as read; returns how many.

    Ids of other users' notifications, or of none, are ignored.
    """
    now = timezone.now()
    return Notification.objects.filter(user=user, pk__in=ids, read_at__isnull=True).update(
        read_at=now, updated_at=now
    )


# --- preferences --------------------------------------------------------------------------

def preferences_set(*, user, categories: dict[str, dict[str, bool]]) -> None:
    """Replace ``user``'s choices for each category given (others are kept).

    ``categories`` maps a category slug to ``{channel: on}``; a channel left out of a given
    category goes back to the default (on). Raises ``ApplicationError`` (field
    ``categories``) naming an unknown category or channel; nothing is written then.
    Critical events are delivered whatever is chosen here.
    """
    known = dict(Category.objects.values_list("slug", "pk"))
    for slug, channels in categories.items():
        if slug not in known:
            raise ApplicationError(
                f"unknown category {slug!r}; choose from {', '.join(sorted(known))}",
                field="categories")
        for channel in channels:
            if channel not in NotificationPreference.CHANNELS:
                choices = ", ".join(NotificationPreference.CHANNELS)
                raise ApplicationError(
                    f"unknown channel {channel!r} in {slug!r}; choose from {choices}",
                    field="categories")
    with transaction.atomic():
        NotificationPreference.objects.filter(
            user=user, category_id__in=[known[slug] for slug in categories]).delete()
        NotificationPreference.objects.bulk_create(
            NotificationPreference(user=user, category_id=known[slug], channel=channel,
                                   enabled=False)
            for slug, channels in categories.items()
            for channel, enabled in channels.items() if not enabled
        )


# --- routing rules ------------------------------------------------------------------------

def routing_rule_set(
    *,
    channels: list[str],
    event_type: EventType | None = None,
    category: Category | None = None,
    extra_emails: list[str] | None = None,
    rule: RoutingRule | None = None,
) -> RoutingRule:
    """Set the channels of one event type or one category (exactly one of them).

    Changes ``rule`` (saved or not) when given, target included; otherwise replaces the
    target's rule or creates it. ``extra_emails`` None keeps the rule's lists. Raises
    ``ValidationError`` naming the problem (unknown or missing channels, a bad address, a
    target that already has another rule). The one way routing rules are written.
    """
    if (event_type is None) == (category is None):
        raise ValidationError("Choose exactly one target: a category or an event type.")
    if rule is None:
        rule = RoutingRule.objects.filter(event_type=event_type, category=category).first()
    if rule is None:
        rule = RoutingRule()
    rule.event_type, rule.category = event_type, category
    rule.channels = channels
    if extra_emails is not None:
        rule.extra_emails = extra_emails
    rule.full_clean()
    rule.save()
    return rule


def routing_rule_delete(*, rule: RoutingRule) -> None:
    """Remove a rule: its target falls back to the category rule or the priority default."""
    rule.delete()


def digest_setting_set(*, channel: str, digest_enabled: bool) -> DigestSetting:
    """Switch digests on or off for one channel (critical and high are never batched)."""
    if channel not in Channel.values:
        choices = ", ".join(Channel.values)
        raise ValidationError(f"Unknown channel {channel!r}; choose from {choices}.")
    setting, _ = DigestSetting.objects.update_or_create(
        channel=channel, defaults={"digest_enabled": digest_enabled}
    )
    return setting
