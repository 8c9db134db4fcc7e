"""In-app rows: notifications in the bell, one per event or one per digest."""

import logging
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from channels_app.backends import Recipient, get_backend
from channels_app.models import Channel
from events.models import Event
from events.templating import render_title

from ..models import PRIORITY_BY_BUCKET, Delivery, Digest, Notification
from ..selectors import AudienceCheck

logger = logging.getLogger(__name__)

#: A digest that fails this many flushes is marked failed, its items too.
DIGEST_MAX_ATTEMPTS = 3


def notifications_create(*, event: Event, recipients: list[Recipient]) -> None:
    """One notification per recipient; a repeat for the same (user, event) is skipped."""
    title = event_title(event)
    Notification.objects.bulk_create(
        [
            Notification(
                user_id=recipient.user_id, event=event, workspace_id=event.workspace_id,
                event_type_key=event.event_type.key, category=event.event_type.category.slug,
                priority=event.priority, title=title,
            )
            for recipient in recipients
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


def digests_send(*, bucket: str) -> int:
    """One digest notification per claimed digest, in the transaction that marks it sent.

    Claimed digests are locked with SKIP LOCKED: a concurrent flush skips the ones this
    one is sending, and a flush that died released its locks, so its digests are sent
    here under their original id. Creating the notification and marking the digest
    delivered commit together, so each digest reaches its user exactly once.

    The audience is checked again at send time: an item whose user was deactivated or
    left the event's workspace since routing is cancelled, not shown.

    One digest that cannot be sent does not stop the others: if sending them all at once
    fails, they are sent one by one and a failing one records its error (see
    ``_digest_record_failure``); the next flush tries it again.
    """
    try:
        return _send_claimed(bucket=bucket)
    except Exception:  # some digest cannot be sent: find it, send the others
        logger.exception("digest flush %s: sending at once failed; one by one now", bucket)
    sent = 0
    claimed = Digest.objects.filter(channel=Channel.IN_APP, bucket=bucket,
                                    status=Digest.Status.CLAIMED)
    for digest_id in claimed.values_list("pk", flat=True):
        try:
            sent += _send_claimed(bucket=bucket, digest_id=digest_id)
        except Exception as exc:  # recorded on the digest; other users' digests go on
            _digest_record_failure(digest_id, f"{type(exc).__name__}: {exc}")
    return sent


def _send_claimed(*, bucket: str, digest_id=None) -> int:
    """Send the claimed digests of ``bucket`` (or only ``digest_id``) in one transaction."""
    with transaction.atomic():
        digests = list(
            Digest.objects.select_for_update(skip_locked=True).filter(
                channel=Channel.IN_APP, bucket=bucket, status=Digest.Status.CLAIMED,
                **({"pk": digest_id} if digest_id else {}),
            )
        )
        if not digests:
            return 0
        items = defaultdict(list)
        events = {}  # one instance (and one rendered title) per event, shared by recipients
        cancelled = []
        deliveries = list(
            Delivery.objects.filter(digest__in=digests)
            .select_related("event__event_type__category", "event__workspace")
            .order_by("event__occurred_at", "pk")
        )
        audience = AudienceCheck(user_ids={d.user_id for d in deliveries})
        for delivery in deliveries:
            event = events.setdefault(delivery.event_id, delivery.event)
            if audience.allows(event, delivery.user_id):
                items[delivery.digest_id].append(event)
            else:
                cancelled.append(delivery.pk)
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
    return len(sent)


def _digest_record_failure(digest_id, error: str) -> None:
    """Count a failed send; after ``DIGEST_MAX_ATTEMPTS`` the digest and its items fail."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update(skip_locked=True).filter(
            pk=digest_id, status=Digest.Status.CLAIMED).first()
        if digest is None:  # sent or being sent by a concurrent flush after all
            return
        digest.attempts += 1
        digest.last_error = error[:2000]
        if digest.attempts >= DIGEST_MAX_ATTEMPTS:
            digest.status = Digest.Status.FAILED
            Delivery.objects.filter(digest=digest, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.FAILED, last_error=digest.last_error,
                updated_at=timezone.now(),
            )
        digest.save(update_fields=["attempts", "last_error", "status"])
    logger.error("digest %s (user %s): send %d of %d failed: %s", digest.pk, digest.user_id,
                 digest.attempts, DIGEST_MAX_ATTEMPTS, error)


def event_title(event: Event) -> str:
    event_type = event.event_type
    return render_title(event_type.title_template, event.payload, fallback=event_type.label,
                        event_id=event.pk)


def _cached_title(event: Event) -> str:
    if not hasattr(event, "_title"):
        event._title = event_title(event)
    return event._title


def build_digest_notification(digest: Digest, events: list[Event]) -> Notification:
    """The in-app digest for one recipient, listing ``events`` oldest first."""
    message = get_backend(Channel.IN_APP).render_digest(
        priority=PRIORITY_BY_BUCKET[digest.bucket],
        events=[(event, _cached_title(event)) for event in events],
        recipient=Recipient(user_id=digest.user_id), delivery_id=digest.pk,
    )
    categories = {event.event_type.category.slug for event in events}
    workspaces = {event.workspace_id for event in events}
    return Notification(
        user_id=digest.user_id,
        kind=Notification.Kind.DIGEST,
        digest=digest,
        workspace_id=workspaces.pop() if len(workspaces) == 1 else None,
        event_type_key="digest",
        category=categories.pop() if len(categories) == 1 else "",
        priority=message.priority,
        title=message.title,
        items=message.items,
    )
