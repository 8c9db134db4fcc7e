"""Reads of digests: what waits for a flush."""

from django.db.models import Count

from ..models import Bucket, Delivery
from ..services.digests import digest_backends


def pending_digest_counts() -> dict[tuple[str, str], int]:
    """(bucket, channel) -> number of deliveries waiting for a flush."""
    rows = (
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .exclude(bucket="")
        .values("bucket", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(row["bucket"], row["channel"]): row["n"] for row in rows}


def pending_digest_table() -> dict[str, dict[str, int]]:
    """Bucket -> channel -> pending items, every bucket and channel present."""
    counts = pending_digest_counts()
    channels = [backend.name for backend in digest_backends()]
    return {bucket: {channel: counts.get((bucket, channel), 0) for channel in channels}
            for bucket in Bucket.values}
