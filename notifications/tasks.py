"""Thin Celery wrappers: ids in, a service call, nothing else."""

import logging

from celery import shared_task

from events import task_names
from events.services import event_mark_failed

from . import delivery, retention, services

logger = logging.getLogger(__name__)

#: A task that fails for an unexpected reason runs again this many times, after 5, 10, 20 s
#: (far below the broker's visibility timeout), then gives up.
MAX_RETRIES = 3
RETRY_BASE_SECONDS = 5


def _retry_or_give_up(task, exc: Exception, give_up) -> None:
    """Retry ``task`` with exponential backoff; after ``MAX_RETRIES`` call ``give_up(error)``."""
    if task.request.retries >= task.max_retries:
        give_up(f"{type(exc).__name__}: {exc}")
        return
    countdown = RETRY_BASE_SECONDS * 2 ** task.request.retries
    logger.warning("%s failed (%r); retry %d of %d in %d s", task.name, exc,
                   task.request.retries + 1, task.max_retries, countdown)
    raise task.retry(exc=exc, countdown=countdown)


# Every task here is idempotent, so a message whose worker died is safe to run again:
# acks_late with reject_on_worker_lost puts it back on the queue instead of acking it.
@shared_task(name=task_names.EVENT_ROUTE, bind=True, max_retries=MAX_RETRIES,
             acks_late=True, reject_on_worker_lost=True)
def event_route(self, *, event_id: str) -> None:
    """Route one event. Idempotent (the service claims the event row), hence acks_late.

    An unexpected failure is retried; after the last retry the event is marked failed with
    the error (visible in the admin and the API) and the outbox sweep leaves it alone.
    """
    _route(self, event_id)


@shared_task(name=task_names.EVENT_ROUTE_URGENT, bind=True, max_retries=MAX_RETRIES,
             acks_late=True, reject_on_worker_lost=True)
def event_route_urgent(self, *, event_id: str) -> None:
    """Route one critical or high event: ``event_route`` on the priority lane (retries too)."""
    _route(self, event_id)


@shared_task(name=task_names.EVENTS_ROUTE_PENDING, bind=True, max_retries=MAX_RETRIES,
             acks_late=True, reject_on_worker_lost=True)
def events_route_pending(self) -> None:
    """Route the pending medium, low and info events in batches (requested by emit).

    Safe to overlap with itself and to run again (the service claims with SKIP LOCKED).
    A failure of the run as a whole (the database went away) is retried, then left to the
    next request or the outbox sweep; one event's failure is handled by the service.
    """
    try:
        result = services.events_route_pending()
    except Exception as exc:  # any failure: bounded retries, then the sweep
        logger.exception("routing pending events failed")
        _retry_or_give_up(self, exc, lambda error: logger.error(
            "routing pending events gave up after %d retries: %s; the outbox sweep routes "
            "them", MAX_RETRIES, error))
        return
    if result.routed or result.handed_over:
        logger.info("routed %d pending events in %d batches (%d handed to a task each)",
                    result.routed, result.batches, result.handed_over)


def _route(task, event_id: str) -> None:
    try:
        result = services.event_route(event_id=event_id)
    except Exception as exc:  # any failure: bounded retries, then the event says why
        logger.exception("event %s: routing failed", event_id)
        _retry_or_give_up(task, exc, lambda error: event_mark_failed(event_id=event_id,
                                                                     error=error))
        return
    if result.skipped:
        logger.info("event %s: nothing to route (unknown, or routed already)", event_id)


@shared_task(name=task_names.DIGEST_FLUSH, bind=True, max_retries=MAX_RETRIES,
             acks_late=True, reject_on_worker_lost=True)
def digest_flush(self, *, bucket: str) -> None:
    """Flush one digest bucket. Safe to overlap with itself and to re-run after a crash.

    A digest that cannot be sent is marked on its own (see the channel's ``send_digests``);
    a flush that fails as a whole is retried, then left to the next scheduled flush.
    """
    try:
        services.digest_flush(bucket=bucket)
    except Exception as exc:  # any failure: bounded retries, then the next flush
        logger.exception("digest flush %s failed", bucket)
        _retry_or_give_up(self, exc, lambda error: logger.error(
            "digest flush %s gave up after %d retries: %s; the next flush sends its items",
            bucket, MAX_RETRIES, error))


@shared_task(name=task_names.DELIVERY_SEND, acks_late=True, reject_on_worker_lost=True)
def delivery_send(*, delivery_id: str) -> None:
    """One attempt at an immediate delivery. Idempotent: the service claims the row first."""
    outcome = delivery.delivery_send(delivery_id=delivery_id)
    logger.info("delivery %s: %s", delivery_id, outcome)


@shared_task(name=task_names.DELIVERIES_PUBLISH, acks_late=True, reject_on_worker_lost=True)
def deliveries_publish(*, jobs: list) -> None:
    """Publish the send tasks of many deliveries (handed over by routing or a flush)."""
    delivery.deliveries_publish(jobs=jobs)


@shared_task(name=task_names.DIGEST_SEND, acks_late=True, reject_on_worker_lost=True)
def digest_send(*, digest_id: str) -> None:
    """One attempt at a digest (its delivery has the digest's id), on the digests queue."""
    outcome = delivery.delivery_send(delivery_id=digest_id)
    logger.info("digest %s: %s", digest_id, outcome)


@shared_task(name=task_names.WEBHOOK_SEND, acks_late=True, reject_on_worker_lost=True)
def webhook_send(*, delivery_id: str) -> None:
    """One attempt at a webhook delivery (an event's or a digest's), on the webhooks queue."""
    outcome = delivery.delivery_send(delivery_id=delivery_id)
    logger.info("webhook delivery %s: %s", delivery_id, outcome)


@shared_task(name=task_names.DELIVERY_SWEEP, acks_late=True, reject_on_worker_lost=True)
def delivery_sweep() -> None:
    """Enqueue again the sends a lost message or a dead worker left behind."""
    delivery.delivery_sweep()


@shared_task(name=task_names.RETENTION_PURGE, acks_late=True, reject_on_worker_lost=True)
def retention_purge() -> None:
    """Delete what is older than ``DATAFI_RETENTION_DAYS`` and finished (chunked; safe to
    overlap and to run again). A failure is left to the next hourly run."""
    retention.retention_purge()
