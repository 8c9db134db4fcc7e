"""Thin Celery wrappers: ids in, a service call, nothing else."""

import logging

from celery import shared_task

from events import task_names

from . import delivery, services

logger = logging.getLogger(__name__)


# Every task here is idempotent, so a message whose worker died is safe to run again:
# acks_late with reject_on_worker_lost puts it back on the queue instead of acking it.
@shared_task(name=task_names.EVENT_ROUTE, acks_late=True, reject_on_worker_lost=True)
def event_route(*, event_id: str) -> None:
    """Route one event. Idempotent (the service claims the event row), hence acks_late."""
    _route(event_id)


@shared_task(name=task_names.EVENT_ROUTE_URGENT, acks_late=True, reject_on_worker_lost=True)
def event_route_urgent(*, event_id: str) -> None:
    """Route one critical or high event: the same as ``event_route``, on the priority lane."""
    _route(event_id)


def _route(event_id: str) -> None:
    result = services.event_route(event_id=event_id)
    if result.skipped:
        logger.info("event %s: nothing to route (unknown, or routed already)", event_id)


@shared_task(name=task_names.DIGEST_FLUSH, acks_late=True, reject_on_worker_lost=True)
def digest_flush(*, bucket: str) -> None:
    """Flush one digest bucket. Safe to overlap with itself and to re-run after a crash."""
    services.digest_flush(bucket=bucket)


@shared_task(name=task_names.DELIVERY_SEND, acks_late=True, reject_on_worker_lost=True)
def delivery_send(*, delivery_id: str) -> None:
    """One attempt at an immediate delivery. Idempotent: the service claims the row first."""
    outcome = delivery.delivery_send(delivery_id=delivery_id)
    logger.info("delivery %s: %s", delivery_id, outcome)


@shared_task(name=task_names.DIGEST_SEND, acks_late=True, reject_on_worker_lost=True)
def digest_send(*, digest_id: str) -> None:
    """One attempt at a digest (its delivery has the digest's id), on the digests queue."""
    outcome = delivery.delivery_send(delivery_id=digest_id)
    logger.info("digest %s: %s", digest_id, outcome)


@shared_task(name=task_names.DELIVERY_SWEEP, acks_late=True, reject_on_worker_lost=True)
def delivery_sweep() -> None:
    """Enqueue again the sends a lost message or a dead worker left behind."""
    delivery.delivery_sweep()
