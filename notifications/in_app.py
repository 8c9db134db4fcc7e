"""The in-app channel: notifications in the bell, one per user, always on.

An in-process channel (``external = False``): its "send" is a notification row, written in
the transaction that routes the event (``write_now``) or that marks a claimed digest sent
(``write_digests``), which is what makes it exactly-once without a task. A delivery's
target is the user's id.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, JSONField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from channels_app.backends import ChannelBackend, Recipient
from events.models import Event
from events.templating import render_title

from . import metrics as pipeline_metrics
from .models import PRIORITY_BY_BUCKET, Delivery, Digest, Notification
from .routing.audience import AudienceCheck

logger = logging.getLogger(__name__)

IN_APP_CHANNEL = "in_app"


class InAppBackend(ChannelBackend):
    name = IN_APP_CHANNEL
    label = "In-app"
    user_choosable = True
    external = False

    def targets(self, *, event, members, rule, config) -> list[Recipient]:
        """Every member once; a rule's addresses mean nothing in the bell."""
        return [Recipient(str(pk), pk) for pk in dict.fromkeys(member.pk for member in members)]

    def write_now(self, routes) -> None:
        notifications_create(routes=routes)

    def write_digests(self, *, bucket: str) -> int:
        return digests_send(bucket=bucket)

    def digest_title(self, *, priority: str, count: int) -> str:
        noun = "notification" if count == 1 else "notifications"
        return f"{count} {priority} {noun}"

    def digest_item(self, *, event, title: str) -> dict:
        """One event as a digest lists it: the same for every recipient, so a flush can
        render each event once for all the digests listing it."""
        return {
            "event_id": str(event.pk),
            "event_type": event.event_type.key,
            "category": event.event_type.category.slug,
            "priority": event.priority,
            "title": title,
            "payload": event.payload,
            "workspace_id": event.workspace.public_id if event.workspace_id else None,
            "workspace_name": event.workspace.name if event.workspace_id else None,
            "occurred_at": event.occurred_at.isoformat(),
        }


IN_APP = InAppBackend()


def notifications_create(*, routes) -> None:
    """One notification per recipient to deliver of each route (``ChannelRoute`` of the
    in-app channel), in one statement whatever the number of events and recipients; a
    repeat for the same (user, event) is skipped. Each event's title is rendered once.

    On PostgreSQL the rows are built in SQL from the recipients' user ids (one array) and
    each event's values (``_insert_sql``): no model instance per recipient. Elsewhere, the
    ORM's bulk insert of the same rows.
    """
    now = timezone.now()
    notified = []  # (the event's notification, its recipients' user ids)
    emitted_at = []  # (emit time, notifications) per event (metrics)
    for route in routes:
        user_ids = [recipient.user_id for recipient in route.to_deliver()]
        if not user_ids:
            continue
        event = route.event
        event_type = event.event_type
        notified.append((Notification(
            event=event, workspace_id=event.workspace_id, event_type_key=event_type.key,
            category=event_type.category.slug, priority=event.priority,
            title=event_title(event), created_at=now, updated_at=now), user_ids))
        emitted_at.append((event.created_at, len(user_ids)))
    if not notified:
        return
    if connection.vendor == "postgresql":
        _notifications_insert(notified)
    else:
        Notification.objects.bulk_create(
            [_copy_for(template, user_id) for template, user_ids in notified
             for user_id in user_ids],
            batch_size=1000, ignore_conflicts=True)
    pipeline_metrics.delivered_now(IN_APP_CHANNEL, emitted_at, now=now)


def _copy_for(template: Notification, user_id) -> Notification:
    notification = Notification(**{f.attname: getattr(template, f.attname)
                                    for f in Notification._meta.concrete_fields})
    notification.user_id = user_id
    return notification


def _notifications_insert(notified: list) -> None:
    """PostgreSQL: insert ``notified``'s rows with ``_insert_sql``. Each event's values go
    through its fields as the ORM's insert would (``pre_save``, ``get_db_prep_save``),
    cast to their column's type; the user ids are one array, as text."""
    fields = _insert_fields()
    events, user_ids, indexes = [], [], []
    for index, (template, recipients) in enumerate(notified):
        events += [index, *(f.get_db_prep_save(f.pre_save(template, True), connection)
                            for f in fields)]
        user_ids += recipients
        indexes += [index] * len(recipients)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(len(notified)), [
            "{" + ",".join(map(str, user_ids)) + "}", "{" + ",".join(map(str, indexes)) + "}",
            *events])


@cache
def _insert_fields() -> tuple:
    """The notification's columns ``_insert_sql`` fills from each event's values: every
    concrete field but the id and the user."""
    return tuple(f for f in Notification._meta.concrete_fields
                 if not f.primary_key and f.attname != "user_id")


def _cast_type(field) -> str:
    """The type a value of ``field`` is cast to: its column's, but unbounded text for a
    string (a cast would cut a value that is too long; the insert refuses it, as the ORM's
    does)."""
    return "text" if isinstance(field, CharField) else field.cast_db_type(connection)


def _insert_sql(events: int) -> str:
    """``INSERT ... SELECT`` of one row per (user id, event index) of the two arrays, joined
    to the events' values; in the arrays' order (the ids follow it, as with the ORM)."""
    quote = connection.ops.quote_name
    fields = _insert_fields()
    user = Notification._meta.get_field("user")
    one_event = "(CAST(%s AS integer), " + ", ".join(
        f"CAST(%s AS {_cast_type(f)})" for f in fields) + ")"
    columns = ", ".join(quote(f.column) for f in fields)
    return (
        f"INSERT INTO {quote(Notification._meta.db_table)} ({quote(user.column)}, {columns}) "
        f"SELECT r.user_id, {', '.join(f'e.{quote(f.column)}' for f in fields)} "
        f"FROM unnest(CAST(%s AS {user.cast_db_type(connection)}[]), CAST(%s AS integer[])) "
        "WITH ORDINALITY AS r(user_id, event_index, n) "
        f"JOIN (VALUES {', '.join([one_event] * events)}) AS e(event_index, {columns}) "
        "ON e.event_index = r.event_index ORDER BY r.n ON CONFLICT DO NOTHING")


def digests_send(*, bucket: str, chunk_items: int | None = None) -> int:
    """One digest notification per claimed digest, in the transaction that marks it sent.

    Works in chunks of whole digests of at most ``chunk_items`` items in all
    (``DATAFI_FLUSH_CHUNK_ITEMS``; a single larger digest is a chunk of its own), each
    chunk its own transaction with the same few queries: memory holds one chunk, whatever
    the number of items. Claimed digests are locked with SKIP LOCKED: a concurrent flush
    skips the ones this one is sending, and a flush that died released its locks, so its
    digests are sent here under their original id. Creating the notification and marking
    the digest delivered commit together, so each digest reaches its user exactly once.

    The audience is checked again at send time: an item whose user was deactivated or
    left the event's workspace since routing is cancelled, not shown.

    One digest that cannot be sent does not stop the others: if sending a chunk at once
    fails, its digests are sent one by one and a failing one records its error (see
    ``_digest_record_failure``); the next flush tries it again.
    """
    chunk_items = chunk_items or settings.DATAFI_FLUSH_CHUNK_ITEMS
    sent, failed = 0, set()  # failed: digests this flush leaves for the next one
    rendered = _RenderedEvents()
    while True:
        chunk = []
        try:
            with transaction.atomic():
                digests = _lock_chunk(bucket=bucket, chunk_items=chunk_items, skip=failed)
                if not digests:
                    return sent
                chunk = [digest.pk for digest in digests]
                sent += _send_chunk(digests, rendered)
            continue
        except Exception:  # some digest of the chunk cannot be sent: find it, send the others
            if not chunk:
                raise
            logger.exception("digest flush %s: sending a chunk at once failed; one by one now",
                             bucket)
        for digest_id in chunk:
            try:
                with transaction.atomic():
                    digests = list(Digest.objects.select_for_update(skip_locked=True).filter(
                        pk=digest_id, status=Digest.Status.CLAIMED))
                    if digests:
                        sent += _send_chunk(digests, rendered)
            except Exception as exc:  # recorded on the digest; other users' digests go on
                failed.add(digest_id)
                _digest_record_failure(digest_id, f"{type(exc).__name__}: {exc}")


def _lock_chunk(*, bucket: str, chunk_items: int, skip=()) -> list[Digest]:
    """Lock claimed digests in id order and keep the first ones within ``chunk_items``."""
    candidates = list(
        Digest.objects.select_for_update(skip_locked=True)
        .filter(channel=IN_APP_CHANNEL, bucket=bucket, status=Digest.Status.CLAIMED)
        .exclude(pk__in=skip)
        .order_by("pk")[:chunk_items]
    )
    chunk, items = [], 0
    for digest in candidates:
        if chunk and items + digest.item_count > chunk_items:
            break
        chunk.append(digest)
        items += digest.item_count
    return chunk


def _send_chunk(digests: list[Digest], rendered: "_RenderedEvents") -> int:
    """Write the notifications of ``digests`` (locked) and mark them sent; the caller's
    transaction makes both one."""
    items = defaultdict(list)
    cancelled = []
    # Items as plain tuples (an item's user is its digest's); each event loaded and rendered
    # once, shared by every recipient: the chunk's cost follows its items, not items x rows.
    deliveries = list(
        Delivery.objects.filter(digest__in=digests)
        .order_by("event__occurred_at", "pk")
        .values_list("pk", "digest_id", "event_id")
    )
    rendered.load({event_id for *_, event_id in deliveries})
    user_ids = {digest.pk: digest.user_id for digest in digests}
    audience = AudienceCheck(user_ids=set(user_ids.values()))
    for pk, digest_id, event_id in deliveries:
        item = rendered[event_id]
        if audience.allows(item.event, user_ids[digest_id]):
            items[digest_id].append(item)
        else:
            cancelled.append(pk)
    del deliveries
    now = timezone.now()
    Notification.objects.bulk_create(
        [build_digest_notification(d, items[d.pk]) for d in digests if items[d.pk]],
        ignore_conflicts=True,
    )
    if cancelled:
        Delivery.objects.filter(pk__in=cancelled).update(
            status=Delivery.Status.CANCELLED, updated_at=now,
            last_error="The recipient is no longer in the event's audience.",
        )
    Delivery.objects.filter(digest__in=digests, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.DELIVERED, delivered_at=now, updated_at=now
    )
    sent = [d.pk for d in digests if items[d.pk]]
    Digest.objects.filter(pk__in=sent).update(status=Digest.Status.DELIVERED, sent_at=now)
    Digest.objects.filter(pk__in=[d.pk for d in digests if not items[d.pk]]).update(
        status=Digest.Status.CANCELLED, sent_at=now
    )
    pipeline_metrics.digests_finished(IN_APP_CHANNEL, delivered=len(sent),
                                      cancelled=len(digests) - len(sent))
    return len(sent)


def _digest_record_failure(digest_id, error: str) -> None:
    """Count a failed send; after ``DATAFI_DIGEST_MAX_ATTEMPTS`` the digest and its items
    fail."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update(skip_locked=True).filter(
            pk=digest_id, status=Digest.Status.CLAIMED).first()
        if digest is None:  # sent or being sent by a concurrent flush after all
            return
        digest.attempts += 1
        digest.last_error = error[:2000]
        if digest.attempts >= settings.DATAFI_DIGEST_MAX_ATTEMPTS:
            digest.status = Digest.Status.FAILED
            Delivery.objects.filter(digest=digest, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.FAILED, last_error=digest.last_error,
                updated_at=timezone.now(),
            )
        digest.save(update_fields=["attempts", "last_error", "status"])
    logger.error("digest %s (user %s): send %d of %d failed: %s", digest.pk, digest.user_id,
                 digest.attempts, settings.DATAFI_DIGEST_MAX_ATTEMPTS, error)


def event_title(event: Event) -> str:
    event_type = event.event_type
    return render_title(event_type.title_template, event.payload, fallback=event_type.label,
                        event_id=event.pk)


@dataclass(frozen=True)
class DigestItem:
    """One event of a digest: the event, and its item as JSON text, rendered by the in-app
    backend and serialized once for every digest that lists it."""

    event: Event
    category: str
    json: str


class _RenderedEvents:
    """The digest items of a flush's current chunk, by event id.

    ``load`` keeps those of the previous chunk that this one lists too (the same events
    usually reach many recipients, whose digests fall in different chunks) and loads the
    others in one query: it holds the events of one chunk (two while loading), whatever the
    size of the flush.
    """

    def __init__(self):
        self._items: dict = {}

    def load(self, event_ids: set) -> None:
        items = {pk: self._items[pk] for pk in event_ids if pk in self._items}
        missing = event_ids - items.keys()
        if missing:
            events = Event.objects.select_related("event_type__category", "workspace")
            for pk, event in events.in_bulk(missing).items():
                item = IN_APP.digest_item(event=event, title=event_title(event))
                items[pk] = DigestItem(event=event, category=event.event_type.category.slug,
                                       json=json.dumps(item))
        self._items = items

    def __getitem__(self, event_id) -> DigestItem:
        return self._items[event_id]


def build_digest_notification(digest: Digest, items: list[DigestItem]) -> Notification:
    """The in-app digest for one recipient, listing ``items`` oldest first.

    Its ``items`` is the digest's JSON, joined from the items' JSON text and cast in SQL:
    nothing is encoded again per recipient. (As a list, Django's bulk insert would also send
    the chunk's digests in one array literal, which psycopg escapes quote by quote: seconds
    for 100,000 items.)
    """
    priority = PRIORITY_BY_BUCKET[digest.bucket]
    categories = {item.category for item in items}
    workspaces = {item.event.workspace_id for item in items}
    return Notification(
        user_id=digest.user_id,
        kind=Notification.Kind.DIGEST,
        digest=digest,
        workspace_id=workspaces.pop() if len(workspaces) == 1 else None,
        event_type_key="digest",
        category=categories.pop() if len(categories) == 1 else "",
        priority=priority,
        title=IN_APP.digest_title(priority=priority, count=len(items)),
        items=Cast(Value(f"[{','.join(item.json for item in items)}]"), JSONField()),
    )
