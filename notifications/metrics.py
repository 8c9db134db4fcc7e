"""What the pipeline counts (``core.metrics``): recipients routed, deliveries finished and
their emit-to-delivered latency, send attempts and their errors.

Counted once the transaction that records them commits (a rolled-back route or send counts
nothing), except attempts, which happened whatever is recorded. Each is a few increments of
memory-mapped values; only a delivered external send reads one thing (its emit time).
"""

from collections.abc import Iterable
from datetime import datetime
from functools import partial

from django.db import transaction

from core import metrics
from events.models import Event


def recipients_routed(counts: dict[str, int]) -> None:
    """``counts``: channel -> recipients routing decided to notify (now or in a digest)."""
    if counts:
        transaction.on_commit(partial(_routed, counts), robust=True)


def _routed(counts: dict[str, int]) -> None:
    for channel, count in counts.items():
        metrics.NOTIFICATIONS.labels(channel).inc(count)


def delivered_now(channel: str, emitted_at: Iterable[tuple[datetime, int]], *,
                  now: datetime) -> None:
    """Messages of ``channel`` delivered at ``now`` (in-app notifications written):
    ``emitted_at`` holds (emit time, messages) pairs, one per event."""
    latencies = [((now - emitted).total_seconds(), count) for emitted, count in emitted_at
                 if count]
    if latencies:
        transaction.on_commit(partial(_delivered, channel, latencies), robust=True)


def _delivered(channel: str, latencies: list[tuple[float, int]]) -> None:
    metrics.DELIVERIES.labels(channel, "delivered").inc(sum(n for _, n in latencies))
    histogram = metrics.DELIVERY_LATENCY.labels(channel)
    for latency, count in latencies:
        metrics.observe_many(histogram, latency, count)


def digests_finished(channel: str, *, delivered: int = 0, cancelled: int = 0) -> None:
    """Digests of ``channel`` written (in-app) or left with no one to tell."""
    def count():
        for outcome, n in (("delivered", delivered), ("cancelled", cancelled)):
            if n:
                metrics.DELIVERIES.labels(channel, outcome).inc(n)

    if delivered or cancelled:
        transaction.on_commit(count, robust=True)


def delivery_finished(*, channel: str, status: str, event_id, now: datetime,
                      emitted_at: datetime | None = None) -> None:
    """One delivery (an event sent alone, or a digest) finished with ``status``; for an
    event's delivery (``event_id``) delivered, its latency from emit is observed (the emit
    time given, or read once this commits, by primary key: delivered sends only)."""
    def count():
        metrics.DELIVERIES.labels(channel, status).inc()
        if status == "delivered" and event_id is not None:
            emitted = emitted_at or (Event.objects.filter(pk=event_id)
                                     .values_list("created_at", flat=True).first())
            if emitted is not None:
                metrics.DELIVERY_LATENCY.labels(channel).observe(
                    (now - emitted).total_seconds())

    transaction.on_commit(count, robust=True)


def attempt_made(*, channel: str, outcome: str, seconds: float, error_kind: str = "") -> None:
    """One send attempt: its outcome (delivered, transient, permanent), how long it took,
    and for a failure its kind (the transport's word, e.g. ``timeout``, ``auth_failed``)."""
    metrics.DELIVERY_ATTEMPTS.labels(channel, outcome).inc()
    metrics.DELIVERY_ATTEMPT_SECONDS.labels(channel).observe(seconds)
    if error_kind:
        metrics.DELIVERY_ERRORS.labels(channel, error_kind).inc()
