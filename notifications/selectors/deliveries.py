"""Reads of deliveries: the delivery log, a target's log, attempts."""

from django.db.models import QuerySet

from ..models import SENT_ALONE, Delivery, DeliveryAttempt


def delivery_list(*, channel: str | None = None, status: str | None = None,
                  bucket: str | None = None, event_type: str | None = None,
                  target: str | None = None) -> QuerySet:
    """Deliveries, newest first, with their event type loaded; ``event_type="digest"``
    gives the digests' own deliveries."""
    deliveries = Delivery.objects.select_related("event__event_type", "user")
    if channel:
        deliveries = deliveries.filter(channel=channel)
    if status:
        deliveries = deliveries.filter(status=status)
    if bucket:
        deliveries = deliveries.filter(bucket=bucket)
    if event_type == "digest":
        deliveries = deliveries.filter(kind=Delivery.Kind.DIGEST)
    elif event_type:
        deliveries = deliveries.filter(event__event_type__key=event_type)
    if target is not None:
        deliveries = deliveries.filter(target=target)
    return deliveries.order_by("-created_at", "-pk")


def delivery_attempt_list(*, delivery: Delivery) -> QuerySet:
    """The attempts of ``delivery``, first to last."""
    return DeliveryAttempt.objects.filter(delivery=delivery).order_by("number")




def target_delivery_list(*, channel: str, target: str, status: str | None = None) -> QuerySet:
    """One target's sent messages (a webhook endpoint's, an address's), newest first, with
    their event type and attempts."""
    deliveries = (Delivery.objects.filter(SENT_ALONE, channel=channel, target=target)
                  .select_related("event__event_type")
                  .prefetch_related("attempt_log"))
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-created_at", "-pk")
