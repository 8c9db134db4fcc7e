"""Thin Celery wrappers: ids in, a service call, nothing else."""

import logging

from celery import shared_task

from events import task_names

from . import services

logger = logging.getLogger(__name__)


# Both tasks are idempotent, so a message whose worker died is safe to run again:
# acks_late with reject_on_worker_lost puts it back on the queue instead of acking it.
@shared_task(name=task_names.EVENT_ROUTE, acks_late=True, reject_on_worker_lost=True)
def event_route(*, event_id: str) -> None:
    """Route one event. Idempotent (the service claims the event row), hence acks_late."""
    result = services.event_route(event_id=event_id)
    if result.skipped:
        logger.info("event %s: nothing to route (unknown, or routed already)", event_id)


@shared_task(name=task_names.DIGEST_FLUSH, acks_late=True, reject_on_worker_lost=True)
def digest_flush(*, bucket: str) -> None:
    """Flush one digest bucket. Safe to overlap with itself and to re-run after a crash."""
    services.digest_flush(bucket=bucket)
