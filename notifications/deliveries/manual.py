"""Sends by hand (retry, replay), and what a channel becoming ready releases."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import Conflict

from ..models import SENT_ALONE, Delivery, Digest
from .enqueue import deliveries_enqueue


class DeliveryNotRetryable(Conflict):
    """A hand retry or replay of a delivery whose state does not allow it (a 409)."""

    code = "not_retryable"


def delivery_retry(*, delivery_id) -> Delivery:
    """Send a failed delivery again under the same id; its attempt numbers continue.

    A hand retry is one more attempt (then transient errors are retried as usual while
    attempts remain; past the channel's limit the next failure is final). Raises
    ``DeliveryNotRetryable`` saying why for a delivery that is not failed, or that is an
    event inside a digest (retry the digest instead). Enqueues after commit.
    """
    with transaction.atomic():
        delivery = _lock_sent_alone(delivery_id, action="retry")
        if delivery.status != Delivery.Status.FAILED:
            raise DeliveryNotRetryable(
                f"Only a failed delivery can be retried; this one is {delivery.status}.")
        now = timezone.now()
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = now
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
        if delivery.kind == Delivery.Kind.DIGEST:
            Delivery.objects.filter(digest_id=delivery.digest_id, kind=Delivery.Kind.EVENT,
                                    status=Delivery.Status.FAILED).update(
                status=Delivery.Status.SENDING, updated_at=now)
            Digest.objects.filter(pk=delivery.digest_id).update(status=Digest.Status.CLAIMED)
        deliveries_enqueue([delivery])
    return delivery


def _lock_sent_alone(delivery_id, *, action: str) -> Delivery:
    """Lock a delivery that is sent by itself, for a hand ``action`` (retry, replay);
    an event inside a digest raises ``DeliveryNotRetryable`` naming the digest."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
    if not delivery.is_sent_alone:
        raise DeliveryNotRetryable(
            f"This delivery went out in digest {delivery.digest_id}: {action} the digest's "
            "delivery instead.")
    return delivery


def delivery_replay(*, delivery_id) -> Delivery:
    """Send a delivered or failed delivery again under the same id (a receiver that lost it,
    or wants it again); its attempt numbers continue.

    Raises ``DeliveryNotRetryable`` for a delivery that is still on its way (pending or
    sending), that was never sent (cancelled, expired), or that is an event inside a digest
    (replay the digest instead). Enqueues after commit.
    """
    with transaction.atomic():
        delivery = _lock_sent_alone(delivery_id, action="replay")
        if delivery.status not in (Delivery.Status.DELIVERED, Delivery.Status.FAILED):
            raise DeliveryNotRetryable(
                f"Only a delivered or failed delivery can be replayed; this one is "
                f"{delivery.status}.")
        if delivery.status == Delivery.Status.FAILED:
            return delivery_retry(delivery_id=delivery_id)
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
        deliveries_enqueue([delivery])
    return delivery


def channel_deliveries_enqueue(*, channel: str) -> int:
    """Enqueue every pending delivery of ``channel`` now (it was just switched on)."""
    with transaction.atomic():
        waiting = list(Delivery.objects.select_for_update(skip_locked=True)
                       .filter(SENT_ALONE, channel=channel, status=Delivery.Status.PENDING)
                       .filter(Q(next_attempt_at__isnull=True)
                               | Q(next_attempt_at__lte=timezone.now()))
                       .only("pk", "kind", "channel", "priority", "event_id"))
        Delivery.objects.filter(pk__in=[d.pk for d in waiting]).update(
            next_attempt_at=timezone.now())
        deliveries_enqueue(waiting)
    return len(waiting)
