"""Publishing send tasks once the rows are committed, each on its channel's queue."""

import logging
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import transaction

from channels_app.backends import get_backend
from config import control_plane
from events.catalog import Priority

from ..models import Delivery

logger = logging.getLogger(__name__)


def deliveries_enqueue(deliveries, *, countdown: float | None = None) -> None:
    """Enqueue one send task per delivery once the current transaction commits.

    Must be called inside the transaction that wrote (or re-armed) the rows; outside one
    the tasks are enqueued at once. A failed publish is logged: the sweep sends the row.
    Reads each delivery's kind, channel and priority (load them when using ``only()``).

    More than ``DATAFI_SEND_FANOUT_CHUNK`` sends on one queue (a critical event for a large
    audience, a flush with many email digests) are handed to the send workers as
    ``deliveries_publish`` tasks of that many sends each, which publish them: the routing
    worker publishes a handful of messages and is free for the next critical event at once,
    instead of publishing one message per recipient first.
    """
    jobs = [(d.kind, str(d.pk), d.channel, d.priority) for d in deliveries]
    if jobs:
        transaction.on_commit(partial(_publish, jobs, countdown))


def deliveries_publish(*, jobs) -> None:
    """Publish the send tasks of ``jobs`` (as ``deliveries_enqueue`` makes them), now."""
    _publish([tuple(job) for job in jobs], None, fan_out=False)


def send_queue(kind: str, channel: str, priority: str) -> str | None:
    """The queue a send goes to: its channel's lane for critical and high events, its
    batched lane for digests and batched priorities sent at once (so a medium backlog never
    delays a critical send). None for a channel that is not installed."""
    backend = get_backend(channel)
    if backend is None:
        return None
    if kind == Delivery.Kind.EVENT and priority in Priority.IMMEDIATE:
        return backend.queue
    return backend.batched_queue


def _publish(jobs: list[tuple[str, str, str, str]], countdown: float | None, *,
             fan_out: bool = True) -> None:
    """Publish the jobs with one producer; stop at the first failure, since the broker is
    then down and each further try would wait for its timeout: the rows are pending and
    due, so the delivery sweep enqueues them once it is back."""
    by_queue: dict[str, list] = {}
    for job in jobs:
        kind, pk, channel, priority = job
        queue = send_queue(kind, channel, priority)
        if queue is None:
            logger.error("delivery %s: channel %r is not installed; not sent", pk, channel)
            continue
        by_queue.setdefault(queue, []).append(job)
    chunk = settings.DATAFI_SEND_FANOUT_CHUNK
    messages = []
    for queue, queued in by_queue.items():
        if fan_out and countdown is None and len(queued) > chunk:
            messages += [(control_plane.DELIVERIES_PUBLISH,
                          {"jobs": [list(job) for job in queued[start:start + chunk]]}, queue)
                         for start in range(0, len(queued), chunk)]
        else:
            messages += [(control_plane.DELIVERY_SEND, {"delivery_id": pk}, queue)
                         for _, pk, _, _ in queued]
    published = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for name, kwargs, queue in messages:
                current_app.send_task(name, kwargs=kwargs, countdown=countdown, retry=False,
                                      producer=producer, queue=queue)
                published += 1
    except Exception as exc:  # the broker's failure must not become the caller's
        logger.warning("%d of %d messages for %d deliveries not enqueued, the sweep will "
                       "retry: %r", len(messages) - published, len(messages), len(jobs), exc)
