"""Thin Celery wrappers: ids in, a service call, nothing else.

Each task's name, queue and retries come from the control plane (``config.control_plane``).
Every task here is idempotent, so a message whose worker died is safe to run again.
"""

import logging

from celery import shared_task
from django.conf import settings

from config import control_plane
from core.logcontext import log_context
from events.services.lifecycle import event_mark_failed

from . import retention
from .deliveries import enqueue, send, sweep
from .routing import route
from .services import attention, digests, held, incidents

logger = logging.getLogger(__name__)


def _retry_or_give_up(task, exc: Exception, give_up) -> None:
    """Retry ``task`` with its control-plane backoff; after its last retry call
    ``give_up(error)``."""
    if task.request.retries >= task.max_retries:
        give_up(f"{type(exc).__name__}: {exc}")
        return
    countdown = control_plane.spec(task.name).retry_countdown(task.request.retries)
    logger.warning("%s failed (%r); retry %d of %d in %d s", task.name, exc,
                   task.request.retries + 1, task.max_retries, countdown)
    raise task.retry(exc=exc, countdown=countdown)


@shared_task(bind=True, **control_plane.task_options(control_plane.EVENT_ROUTE))
def event_route(self, *, event_id: str) -> None:
    """Route one event. Idempotent (the service claims the event row), hence acks_late.

    An unexpected failure is retried; after the last retry the event is marked failed with
    the error (visible in the admin and the API) and the outbox sweep leaves it alone.
    """
    _route(self, event_id, route.event_route)


@shared_task(bind=True, **control_plane.task_options(control_plane.EVENT_ROUTE_URGENT))
def event_route_urgent(self, *, event_id: str) -> None:
    """Route a critical or high event, with the others waiting (``event_route_urgent``), on
    the priority lane; retried as ``event_route``."""
    _route(self, event_id, route.event_route_urgent)


@shared_task(bind=True, **control_plane.task_options(control_plane.EVENTS_ROUTE_PENDING))
def events_route_pending(self) -> None:
    """Route the pending medium, low and info events in batches (requested by emit).

    Safe to overlap with itself and to run again (the drain claims with SKIP LOCKED).
    A failure of the run as a whole (the database went away) is retried, then left to the
    next request or the outbox sweep; one event's failure is handled by the drain.
    """
    try:
        result = route.events_route_pending()
    except Exception as exc:  # any failure: bounded retries, then the sweep
        logger.exception("routing pending events failed")
        _retry_or_give_up(self, exc, lambda error: logger.error(
            "routing pending events gave up: %s; the outbox sweep routes them", error))
        return
    if result.routed or result.handed_over:
        logger.info("routed %d pending events in %d batches (%d handed to a task each)",
                    result.routed, result.batches, result.handed_over)


def _route(task, event_id: str, route_event) -> None:
    with log_context(event_id=event_id):
        try:
            result = route_event(event_id=event_id)
        except Exception as exc:  # any failure: bounded retries, then the event says why
            logger.exception("event %s: routing failed", event_id)
            _retry_or_give_up(task, exc, lambda error: event_mark_failed(event_id=event_id,
                                                                         error=error))
            return
        if result.skipped:
            logger.info("event %s: nothing to route (unknown, or routed already)", event_id)


@shared_task(bind=True, **control_plane.task_options(control_plane.DIGEST_FLUSH))
def digest_flush(self, *, bucket: str) -> None:
    """Flush one digest bucket. Safe to overlap with itself and to re-run after a crash.

    A digest that cannot be sent is marked on its own; a flush that fails as a whole is
    retried, then left to the next scheduled flush.
    """
    try:
        digests.digest_flush(bucket=bucket)
    except Exception as exc:  # any failure: bounded retries, then the next flush
        logger.exception("digest flush %s failed", bucket)
        _retry_or_give_up(self, exc, lambda error: logger.error(
            "digest flush %s gave up: %s; the next flush sends its items", bucket, error))


@shared_task(**control_plane.task_options(control_plane.DELIVERY_SEND))
def delivery_send(*, delivery_id: str, channel: str | None = None) -> None:
    """One attempt at a delivery (an event's or a digest's), on its channel's queue.
    Idempotent: the service claims the row first. ``channel``: the delivery's (messages of
    older versions lack it)."""
    with log_context(delivery_id=delivery_id):
        outcome = send.delivery_send(delivery_id=delivery_id, channel=channel)
        logger.info("delivery %s: %s", delivery_id, outcome)


@shared_task(**control_plane.task_options(control_plane.DELIVERIES_SEND))
def deliveries_send(*, delivery_ids: list, channel: str | None = None) -> None:
    """One attempt at each of a few sends on one channel, over one kept connection.
    Idempotent. ``channel``: theirs (messages of older versions lack it)."""
    outcomes = send.deliveries_send(delivery_ids=delivery_ids, channel=channel)
    logger.info("%d deliveries: %s", len(outcomes), ", ".join(
        f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes))))


@shared_task(**control_plane.task_options(control_plane.EVENT_DELIVERIES_SEND))
def event_deliveries_send(*, event_id: str, channel: str, queue: str) -> None:
    """The next batch of one event's sends on one channel (a large audience): claimed,
    its continuation queued behind whatever waits now, then sent. Idempotent."""
    with log_context(event_id=event_id):
        taken = send.event_deliveries_send(
            event_id=event_id, channel=channel, batch=settings.DATAFI_SEND_LANE_BATCH,
            then=lambda: enqueue.event_batch_continue(event_id=event_id, channel=channel,
                                                      queue=queue))
        logger.info("event %s: %d %s sends", event_id, taken, channel)


@shared_task(**control_plane.task_options(control_plane.DELIVERIES_PUBLISH))
def deliveries_publish(*, jobs: list) -> None:
    """Publish the sends of many deliveries (messages of older versions)."""
    enqueue.deliveries_publish(jobs=jobs)


@shared_task(**control_plane.task_options(control_plane.DIGEST_SEND))
def digest_send(*, digest_id: str) -> None:
    """A digest's send as older versions queued it: ``delivery_send`` of its delivery."""
    delivery_send(delivery_id=digest_id)


@shared_task(**control_plane.task_options(control_plane.WEBHOOK_SEND))
def webhook_send(*, delivery_id: str) -> None:
    """A webhook send as older versions queued it: ``delivery_send``."""
    delivery_send(delivery_id=delivery_id)


@shared_task(**control_plane.task_options(control_plane.DELIVERY_SWEEP))
def delivery_sweep() -> None:
    """Enqueue again the sends a lost message or a dead worker left behind."""
    sweep.delivery_sweep()


@shared_task(**control_plane.task_options(control_plane.RETENTION_PURGE))
def retention_purge() -> None:
    """Delete what is older than ``DATAFI_RETENTION_DAYS`` and finished (chunked; safe to
    overlap and to run again). A failure is left to the next hourly run."""
    retention.retention_purge()


@shared_task(**control_plane.task_options(control_plane.HELD_RELEASE))
def held_release() -> None:
    """Send, as one digest per target, what quiet hours held and may go out now."""
    held.held_release()


@shared_task(**control_plane.task_options(control_plane.SNOOZED_WAKE))
def snoozed_wake() -> None:
    """Bring back, unread, the notifications whose snooze has ended."""
    attention.snoozed_wake()


@shared_task(**control_plane.task_options(control_plane.ESCALATION_SWEEP))
def escalation_sweep() -> None:
    """Send the due escalations of events nobody acknowledged or resolved, each once."""
    while incidents.escalations_send() == incidents.ESCALATIONS_PER_SWEEP:
        pass  # a full batch: there may be more due
