"""The outbox: every pending event gets routed, once, whatever fails on the way.

- ``event_enqueue``: one critical or high event's routing job, published after commit.
- The routing-request protocol of the batched priorities (medium, low, info), whole in
  this module: emit requests routing once per transaction (``routing_request_on_commit``,
  a flag in the shared cache), and ``pending_events_drain`` routes every pending batched
  event in batches, with the argument why none is left behind.
- ``outbox_sweep`` (beat): enqueue again what a failed publish or a lost message left.

What routing *does* is the upper layer's: it registers the tasks of the jobs
(``events.dispatch``) and passes the drain what routes one claimed batch.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from core import metrics

from .. import catalog, dispatch
from ..models import Event
from .lifecycle import event_mark_route_error

logger = logging.getLogger(__name__)

_broker_down_until = 0.0  # monotonic time; per process


def event_enqueue(*, event_id, priority: str) -> bool:
    """Publish the routing task for one event; never raises. Runs after commit.

    Critical and high events go to the priority lane (the ``ROUTE_URGENT`` job, whose task
    runs on the ``urgent`` queue), so they never wait behind batched work.

    A broker that is down or hangs fails fast (connection and socket timeouts in settings,
    no publish retries). The event is then marked due for the next outbox sweep, and this
    process leaves the broker alone for ``DATAFI_BROKER_BACKOFF_SECONDS``, so a caller that
    emits many events during an outage waits for one timeout, not one per event.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        _mark_due_for_sweep(event_id)
        return False
    try:
        job = (dispatch.ROUTE_URGENT if priority in catalog.Priority.IMMEDIATE
               else dispatch.ROUTE)
        dispatch.publish(job, event_id=str(event_id))
    except Exception as exc:  # the broker's failure must not become the caller's
        _broker_down_until = time.monotonic() + settings.DATAFI_BROKER_BACKOFF_SECONDS
        metrics.OUTBOX_PUBLISH_FAILURES.inc()
        logger.warning("routing of event %s not enqueued, the sweep will retry: %r", event_id, exc,
                       extra={"event_id": str(event_id)})
        _mark_due_for_sweep(event_id)
        return False
    return True


def _mark_due_for_sweep(*event_ids) -> None:
    try:
        Event.objects.filter(pk__in=event_ids, status=Event.Status.PENDING).update(
            next_sweep_at=timezone.now()
        )
    except DatabaseError:  # the rows keep their later sweep time; they are not lost
        logger.exception("events %s: could not mark them due for the outbox sweep", event_ids)


#: The cache key of "routing of the pending batched events is requested" (see below).
ROUTING_REQUESTED_KEY = "events:routing-requested"


def routing_request(*, event_ids=()) -> bool:
    """Have a worker route every pending medium, low and info event; never raises.

    Publishes one ``ROUTE_PENDING`` job, unless one is requested already: the
    request is a flag in the shared cache, set atomically (``cache.add``, SET NX on Redis)
    and deleted by the task before it claims anything. A caller that finds the flag set
    needs nothing more: its events committed before it looked, so before the drain deleted
    the flag, so the drain's claims, which come after the delete, see them
    (``pending_events_drain`` has the whole argument).

    When the broker refuses, the flag is deleted again and ``event_ids`` (the caller's
    events) are marked due for the next outbox sweep, as ``event_enqueue`` does; the flag
    lives ``DATAFI_ROUTING_REQUEST_SECONDS`` at most, so a request whose message is lost
    holds back new ones no longer than that. Returns whether routing is on its way.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        _mark_due_for_sweep(*event_ids)
        return False
    try:
        requested = cache.add(ROUTING_REQUESTED_KEY, 1,
                              timeout=settings.DATAFI_ROUTING_REQUEST_SECONDS)
    except Exception as exc:  # no cache: publish anyway; a spare task finds nothing to do
        logger.warning("routing request flag not set: %r", exc)
        requested = True
    if not requested:
        return True
    try:
        dispatch.publish(dispatch.ROUTE_PENDING)
    except Exception as exc:  # the broker's failure must not become the caller's
        _broker_down_until = time.monotonic() + settings.DATAFI_BROKER_BACKOFF_SECONDS
        metrics.OUTBOX_PUBLISH_FAILURES.inc()
        logger.warning("routing of pending events not requested, the sweep will retry: %r",
                       exc)
        routing_request_clear()
        _mark_due_for_sweep(*event_ids)
        return False
    return True


def routing_request_clear() -> None:
    """Forget the routing request, so that the next emit requests again; never raises.

    ``pending_events_drain`` calls it before it claims any event.
    """
    try:
        cache.delete(ROUTING_REQUESTED_KEY)
    except Exception as exc:  # the flag expires by itself
        logger.warning("routing request flag not deleted: %r", exc)


class _RoutingRequest:
    """The routing request of one transaction's batched events, run once it commits."""

    def __init__(self, event_id):
        self.event_ids = [event_id]
        self.done = False

    def __call__(self):
        self.done = True
        routing_request(event_ids=self.event_ids)


def routing_request_on_commit(event_id) -> None:
    """Request routing of ``event_id`` once the caller commits: one request (one cache
    round trip) per transaction, however many batched events it emits.

    Django replaces ``run_on_commit`` with a new list whenever it runs the callbacks or a
    rollback drops some; a request registered in the current list is still to run, so
    the event joins it. Otherwise (first event, or the list changed) a new one is
    registered: at worst a transaction makes two requests, never none.
    """
    conn = transaction.get_connection()
    current = getattr(conn, "datafi_routing_request", None)
    if current is not None and current[0] is conn.run_on_commit and not current[1].done:
        current[1].event_ids.append(event_id)
        return
    request = _RoutingRequest(event_id)
    conn.datafi_routing_request = (conn.run_on_commit, request)
    transaction.on_commit(request)


def outbox_stale_window(priority: str) -> timedelta:
    """How long an event may stay unrouted after an enqueue before the sweep enqueues it again.

    Critical and high events get ``DATAFI_OUTBOX_URGENT_STALE_SECONDS``: a message lost with
    a killed worker (Redis hides it for the visibility timeout) or with a broker restarted
    empty is enqueued again within that window plus one sweep interval. The batched
    priorities wait ``DATAFI_OUTBOX_STALE_SECONDS``; they wait for a digest anyway.
    """
    if priority in catalog.Priority.IMMEDIATE:
        return timedelta(seconds=settings.DATAFI_OUTBOX_URGENT_STALE_SECONDS)
    return timedelta(seconds=settings.DATAFI_OUTBOX_STALE_SECONDS)


def outbox_sweep(*, batch_size: int = 500) -> int:
    """Enqueue routing for every pending event that is due; returns how many were enqueued.

    Due: its publish failed, or it is still unrouted a stale window (``outbox_stale_window``)
    after emit or after its last enqueue (a lost message, or a process that died before
    publishing). Each enqueue pushes the event's next sweep that far ahead, so a backlog in
    the queue is not flooded with copies. Stops at the first failed publish: the broker is
    still down and the next sweep tries again. Safe to run at any time: routing claims the
    event, so one enqueued twice is routed once. Uses the partial index on ``next_sweep_at``.
    """
    enqueued = 0
    while True:
        now = timezone.now()
        due = list(
            Event.objects.filter(status=Event.Status.PENDING, next_sweep_at__lte=now)
            .order_by("next_sweep_at")
            .values_list("pk", "priority")[:batch_size]
        )
        sent: dict[timedelta, list] = {}  # stale window -> event ids enqueued
        count = 0
        for event_id, priority in due:
            if not event_enqueue(event_id=event_id, priority=priority):
                break
            sent.setdefault(outbox_stale_window(priority), []).append(event_id)
            count += 1
        for window, ids in sent.items():
            Event.objects.filter(pk__in=ids, status=Event.Status.PENDING).update(
                next_sweep_at=now + window
            )
        enqueued += count
        if count < len(due) or len(due) < batch_size:
            break
    if enqueued:
        logger.info("outbox sweep: %d pending events enqueued", enqueued)
    return enqueued


# --- the drain of the batched priorities ------------------------------------------------------

@dataclass
class DrainResult:
    routed: int = 0
    batches: int = 0
    handed_over: int = 0  # events that failed in a batch and alone: each has its own task


def pending_events_drain(*, route_batch: Callable[..., list], route_one: Callable[..., bool],
                         batch_size: int) -> DrainResult:
    """Route every pending medium, low and info event, in batches; safe to run concurrently.

    ``route_batch(batch_size=, on_full_claim=)`` claims up to ``batch_size`` of the oldest
    pending batched events in one statement (``FOR UPDATE SKIP LOCKED``, so concurrent
    drains share the work), routes them in one transaction, and returns their ids; after
    a full claim, before routing, it calls ``on_full_claim`` (which requests one more
    drain, so a second worker process helps with a backlog). A batch that raises carries
    the ids it claimed (``claimed_ids``). ``route_one(event_id)`` routes one event alone.

    First forgets the routing request (``routing_request_clear``), then repeats the batch
    until a claim comes back short.

    Why no event is left behind. An emit commits its event, then tries to set the request
    flag (``cache.add``). If it sets it, it publishes a drain of its own. If the flag was
    set already, its event committed before this drain deleted the flag (the delete came
    after that add), so every claim of this drain, all after the delete, sees the event:
    pending, unless a concurrent drain holds it (that one routes it) or routed it. A claim
    that comes back short has seen every unlocked pending event committed before it. The
    claim skips events another drain holds locked, which that drain routes; a drain that
    dies releases its locks and its message comes back (acks_late). A request whose
    message is lost is covered by the outbox sweep, which routes each event alone.

    A batch that fails is routed again one event at a time, so one bad event does not hold
    back the others; an event that fails alone too gets its own routing job (its bounded
    retries end with the event marked failed), and ``last_error`` says so meanwhile, which
    keeps the batches from claiming it again.
    """
    routing_request_clear()
    result = DrainResult()
    while True:
        try:
            claimed = route_batch(batch_size=batch_size, on_full_claim=routing_request)
            result.routed += len(claimed)
        except Exception as exc:  # some event of the batch cannot be routed: one by one
            claimed = getattr(exc, "claimed_ids", None)
            if not claimed:
                raise
            logger.exception("routing %d events at once failed; one by one now", len(claimed))
            for event_id in claimed:
                routed = route_alone_or_hand_over(event_id, route_one)
                result.routed += routed is True
                result.handed_over += routed is None
        result.batches += 1
        if len(claimed) < batch_size:
            return result


def route_alone_or_hand_over(event_id, route_one, *, priority: str = catalog.Priority.MEDIUM
                             ) -> bool | None:
    """Route one event of a failed batch alone (whether ``route_one`` routed it); if that
    fails too, record why (``last_error``, which keeps later batches from claiming it) and
    give it a routing job of its own on ``priority``'s lane (bounded retries, then marked
    failed): returns None."""
    try:
        return bool(route_one(event_id))
    except Exception as exc:  # recorded on the event; the others go on
        logger.exception("event %s: routing failed; it gets a job of its own", event_id)
        event_mark_route_error(
            event_id=event_id,
            error=f"Batched routing failed, retried alone: {type(exc).__name__}: {exc}")
        event_enqueue(event_id=event_id, priority=priority)
        return None
