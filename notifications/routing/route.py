"""Routing events: lock them, plan, apply the delivery policies, record.

``event_route`` routes one event (a batch's failed event, the outbox sweep);
``event_route_urgent`` routes a critical or high event with the others waiting (the
priority lane); ``events_route_pending`` routes the batched priorities through the floor's
routing-request protocol (``events.services.outbox.pending_events_drain``), which owns the
loop and its correctness argument; this module supplies what routes one claimed batch.
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from core.joined import Joined
from events.catalog import Priority
from events.models import Category, Event, EventType
from events.services.outbox import DrainResult, pending_events_drain, route_alone_or_hand_over

from ..deliveries.enqueue import deliveries_enqueue
from ..policies import active_policies
from .plan import RoutingPlan, plan_build
from .record import plan_record
from .rules import ROUTING_TOKEN_SQL, routing_config_get

logger = logging.getLogger(__name__)


@dataclass
class RouteResult:
    event_id: str
    channels: dict[str, int] = field(default_factory=dict)  # channel -> recipients
    skipped: bool = False


def event_route(*, event_id) -> RouteResult:
    """Route one event (``events_route`` for a batch of one); idempotent.

    Locks the event row and only routes a pending event, so a duplicate task or the outbox
    sweep re-enqueueing it routes it once.
    """
    return (_event_route_locked(event_id, skip_locked=False)
            or RouteResult(event_id=str(event_id), skipped=True))


def _event_route_locked(event_id, *, skip_locked: bool) -> RouteResult | None:
    """Lock the event and route it if it is pending; None if it is not found (with
    ``skip_locked``: or another worker holds it)."""
    with transaction.atomic():
        pk = Event._meta.pk.get_db_prep_value(event_id, connection)
        event = next(iter(events_lock(where="e.id = %s", params=[pk],
                                      skip_locked=skip_locked)), None)
        if event is None:
            return None
        if event.status != Event.Status.PENDING:
            return RouteResult(event_id=str(event_id), skipped=True)
        return events_route([event], token=event.routing_token)[0]


IMMEDIATE_PRIORITIES = sorted(Priority.IMMEDIATE)


def event_route_urgent(*, event_id, batch_size: int | None = None) -> RouteResult:
    """Route a critical or high event now, alone, then the oldest other pending critical
    and high events no worker holds (``FOR UPDATE SKIP LOCKED``), up to
    ``DATAFI_URGENT_ROUTING_BATCH_SIZE - 1`` of them in one transaction: a burst is routed
    in a few batches rather than a transaction each, and the others' own tasks find them
    routed. This task's event never waits for the others: its transaction, and so its
    sends, are committed first. Only a task that routed its own event looks for others: one
    whose event a batch routed already, or that no longer exists, returns at once.

    An event another worker holds (its batch) is left to it and made sure of with
    ``event_route``: skipped if that worker routed it, routed here if not. A batch
    that fails is routed again one event at a time (an event that fails alone too gets a
    job of its own, see ``route_alone_or_hand_over``). A failure of this task's own event
    is this task's (retried, then the event marked failed).
    """
    size = batch_size or settings.DATAFI_URGENT_ROUTING_BATCH_SIZE
    own = str(Event._meta.pk.to_python(event_id))
    # Held by another worker (or gone): made sure of once that one is done.
    result = _event_route_locked(own, skip_locked=True) or event_route(event_id=own)
    if not result.skipped and size > 1:  # routed here: the burst behind it, if any
        _route_waiting_urgent(size - 1)
    return result


def _route_waiting_urgent(size: int) -> None:
    """Route up to ``size`` of the oldest pending critical and high events no worker holds,
    in one transaction; a batch that fails, one by one."""
    claimed: list[Event] = []
    try:
        with transaction.atomic():
            claimed = oldest_pending_lock(IMMEDIATE_PRIORITIES, size)
            events_route(claimed, token=claimed[0].routing_token if claimed else None)
    except Exception:  # not this task's failure: each of them has a task of its own
        logger.exception("routing %d waiting urgent events at once failed%s", len(claimed),
                         "; one by one now" if claimed else "")
        for event in claimed:
            route_alone_or_hand_over(event.pk, _route_one, priority=event.priority)


def events_plan(events: list[Event], *, token: str | None, dry_run: bool = False
                ) -> RoutingPlan:
    """The decided plan of ``events`` (routing and every policy), nothing written; a
    ``dry_run`` takes no lock either (explain)."""
    plan = plan_build(events, routing_config_get(token=token), dry_run=dry_run)
    for policy in active_policies():
        policy.apply(plan)
    return plan


def events_route(events: list[Event], *, token: str | None) -> list[RouteResult]:
    """Plan, decide and record ``events``; their sends are enqueued once this commits.

    The caller holds the events' row locks in its transaction and passes pending events
    only, with their event type and category loaded, and ``token``: the routing version
    read in the query that locked them (the configuration comes from the cache it
    validates). On PostgreSQL the number of queries does not depend on the number of events
    or recipients: the audiences (two at most), each policy's few, the inserts, one update
    of the events.
    """
    if not events:
        return []
    plan = events_plan(events, token=token)
    to_send = plan_record(plan, policies=active_policies())
    deliveries_enqueue(to_send)  # after commit: rows first, network later
    return [RouteResult(event_id=str(p.event.pk), skipped=p.verdict is not None,
                        channels={r.channel: len(r.to_deliver()) for r in p.routes}
                        if p.verdict is None else {})
            for p in plan.events]


BATCHED_PRIORITIES = [p for p in Priority.VALUES if p not in Priority.IMMEDIATE]


def events_route_pending(*, batch_size: int | None = None) -> DrainResult:
    """Route every pending medium, low and info event, in batches; safe to run concurrently
    (see ``events.services.outbox.pending_events_drain`` for the protocol)."""
    return pending_events_drain(route_batch=_route_batch, route_one=_route_one,
                                batch_size=batch_size or settings.DATAFI_ROUTING_BATCH_SIZE)


def _route_batch(*, batch_size: int, on_full_claim) -> list:
    """Claim up to ``batch_size`` of the oldest pending batched events (SKIP LOCKED) and
    route them in one transaction; returns the claimed ids. Calls ``on_full_claim`` right
    after a full claim, before routing, so a helper can start on the next batch."""
    with transaction.atomic():
        claimed = oldest_pending_lock(BATCHED_PRIORITIES, batch_size)
        ids = [event.pk for event in claimed]
        if len(claimed) == batch_size:
            on_full_claim()
        try:
            events_route(claimed, token=claimed[0].routing_token if claimed else None)
        except Exception as exc:
            exc.claimed_ids = ids  # the drain routes them one by one
            raise
    return ids


def _route_one(event_id) -> bool:
    return not event_route(event_id=event_id).skipped


# --- the lock query ---------------------------------------------------------------------------

def oldest_pending_lock(priorities: list[str], limit: int) -> list[Event]:
    """Lock up to ``limit`` of the oldest pending events of ``priorities`` that no worker
    holds (SKIP LOCKED) and that have no routing error (those are retried alone)."""
    return events_lock(
        where=f"e.status = %s AND e.last_error = %s AND e.priority IN "
              f"({', '.join(['%s'] * len(priorities))})",
        params=[Event.Status.PENDING, "", *priorities],
        tail=" ORDER BY e.created_at LIMIT %s", tail_params=[limit], skip_locked=True)


def events_lock(*, where: str, params: list, tail: str = "", tail_params=(),
                skip_locked: bool = False) -> list[Event]:
    """Lock the events ``where`` says (SQL on alias ``e``) and return them with their event
    type and category loaded, and ``routing_token``: the routing version token, read in
    the same query (so a warm cache costs no round trip).

    Written by hand (``core.joined``): this query is most of a route's fixed cost, and the
    ORM's version of it costs three times as much in Python. Must be called inside a
    transaction; on SQLite, which has no row locks, the transaction's write lock serves.
    """
    lock = ""
    if connection.features.has_select_for_update:
        lock = " FOR UPDATE OF e" + (" SKIP LOCKED" if skip_locked else "")
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL.format(where=where, tail=tail, lock=lock),
                       [*params, *tail_params])
        rows = cursor.fetchall()
    events = []
    for row in rows:
        event, event_type, category = _LOCKED.build(row)
        event_type.category = category
        event.event_type = event_type
        event.routing_token = row[-1]
        events.append(event)
    return events


_LOCKED = Joined((Event, "e"), (EventType, "t"), (Category, "c"))
_LOCK_SQL = (
    f"SELECT {_LOCKED.select()}, ({ROUTING_TOKEN_SQL}) FROM {Event._meta.db_table} e "
    f"JOIN {EventType._meta.db_table} t ON t.id = e.event_type_id "
    f"JOIN {Category._meta.db_table} c ON c.id = t.category_id "
    "WHERE {where}{tail}{lock}"
)
