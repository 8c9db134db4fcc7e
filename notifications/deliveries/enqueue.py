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
    """Enqueue the sends of ``deliveries`` once the current transaction commits.

    Must be called inside the transaction that wrote (or re-armed) the rows; outside one
    the tasks are enqueued at once. A failed publish is logged: the sweep sends the row.
    Reads each delivery's kind, channel, priority and event (load them with ``only()``).

    A send is one ``delivery_send`` task, and a few sends on one queue one
    ``deliveries_send`` task of up to ``DATAFI_SEND_BATCH`` of them (sent over one kept
    connection). More than that of one event on one channel (a critical event for a large
    audience) are ``DATAFI_SEND_LANES`` ``event_deliveries_send`` tasks: each claims a
    batch, puts its continuation at the back of the queue and sends the batch, so the
    send workers share the audience and a later critical event's send waits for one batch,
    not for the whole audience. The routing worker publishes a handful of messages.
    """
    jobs = [(d.kind, str(d.pk), d.channel, d.priority, str(d.event_id or ""))
            for d in deliveries]
    if jobs:
        transaction.on_commit(partial(_publish, jobs, countdown))


def deliveries_publish(*, jobs) -> None:
    """Publish the sends of ``jobs`` (as ``deliveries_enqueue`` makes them; messages of
    older versions have no event), now."""
    _publish([(*job, "")[:5] for job in jobs], None)


def event_batch_continue(*, event_id: str, channel: str, queue: str) -> None:
    """Put the next batch of an event's sends at the back of ``queue`` (see above)."""
    _send([(control_plane.EVENT_DELIVERIES_SEND,
            {"event_id": event_id, "channel": channel, "queue": queue}, queue)], None, jobs=1)


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


def bulk_queue(channel: str, queue: str) -> str:
    """Where the lanes of a large audience whose sends belong on ``queue`` go: the channel's
    bulk lane for immediate sends, ``queue`` itself for batched ones."""
    backend = get_backend(channel)
    return backend.bulk_queue if queue == backend.queue else queue


def _publish(jobs: list[tuple[str, str, str, str, str]], countdown: float | None) -> None:
    by_queue: dict[str, list] = {}
    for job in jobs:
        kind, pk, channel, priority, _ = job
        queue = send_queue(kind, channel, priority)
        if queue is None:
            logger.error("delivery %s: channel %r is not installed; not sent", pk, channel)
            continue
        by_queue.setdefault(queue, []).append(job)
    batch = max(1, settings.DATAFI_SEND_BATCH)
    messages = []
    for queue, queued in by_queue.items():
        if countdown is not None:  # retries: each at its own time
            messages += [(control_plane.DELIVERY_SEND, {"delivery_id": pk, "channel": channel},
                          queue) for _, pk, channel, _, _ in queued]
            continue
        audiences: dict[tuple[str, str], list] = {}
        for job in queued:
            if job[0] == Delivery.Kind.EVENT and job[4]:
                audiences.setdefault((job[4], job[2]), []).append(job)
        large = {key for key, group in audiences.items() if len(group) > batch}
        for event_id, channel in large:
            lanes = min(settings.DATAFI_SEND_LANES,
                        -(-len(audiences[event_id, channel]) // settings.DATAFI_SEND_LANE_BATCH))
            lane = bulk_queue(channel, queue)
            messages += [(control_plane.EVENT_DELIVERIES_SEND,
                          {"event_id": event_id, "channel": channel, "queue": lane}, lane)
                         ] * max(1, lanes)
        by_channel: dict[str, list] = {}
        for job in queued:
            if (job[4], job[2]) not in large:
                by_channel.setdefault(job[2], []).append(job[1])
        for channel, rest in by_channel.items():  # each message names its channel
            for start in range(0, len(rest), batch):
                ids = rest[start:start + batch]
                messages.append(
                    (control_plane.DELIVERY_SEND, {"delivery_id": ids[0], "channel": channel},
                     queue) if len(ids) == 1 else
                    (control_plane.DELIVERIES_SEND, {"delivery_ids": ids, "channel": channel},
                     queue))
    _send(messages, countdown, jobs=len(jobs))


def _send(messages: list[tuple[str, dict, str]], countdown: float | None, *, jobs: int) -> None:
    """Publish with one producer; stop at the first failure, since the broker is then down
    and each further try would wait for its timeout: the rows are pending and due, so the
    delivery sweep enqueues them once it is back."""
    published = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for name, kwargs, queue in messages:
                current_app.send_task(name, kwargs=kwargs, countdown=countdown, retry=False,
                                      producer=producer, queue=queue)
                published += 1
    except Exception as exc:  # the broker's failure must not become the caller's
        logger.warning("%d of %d messages for %d deliveries not enqueued, the sweep will "
                       "retry: %r", len(messages) - published, len(messages), jobs, exc)
