"""Why a person got a notification, or did not: each channel's decision and its reason.

``event_explain`` reads what routing recorded for an event (its status, the channels and the
rule it recorded, and the person's rows: notifications, deliveries held or skipped with
their reason); ``routing_explain`` runs routing and every delivery policy as a dry run for
an event that was not emitted, and writes nothing.
"""

import uuid
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from channels_app.backends import channel_names, get_backend
from events.models import Event

from ..models import Delivery, Notification, Silence
from .audience import audiences_get
from .plan import Decision
from .route import events_plan
from .rules import RoutingSource


@dataclass
class Explanation:
    priority: str
    rule_source: str
    channels: dict[str, dict] = field(default_factory=dict)  # name -> {"decision", "detail"}

    def set(self, channel: str, decision: str, detail: str) -> None:
        self.channels[channel] = {"decision": decision, "detail": detail}

    def as_dict(self) -> dict:
        return {"priority": self.priority, "rule_source": self.rule_source,
                "channels": self.channels}


#: An event's status that stopped it as a whole, as a decision.
STOPPED = {Event.Status.SUPPRESSED: Decision.DISABLED, Event.Status.SILENCED: Decision.SILENCED,
           Event.Status.GROUPED: Decision.GROUPED, Event.Status.INHIBITED: Decision.INHIBITED}


def event_explain(*, event: Event, user) -> Explanation:
    """Each channel's decision for ``user`` on a routed (or stopped) event, from the records.

    Two queries, whatever the number of channels.
    """
    return _EventRecords(event, user_ids=[user.pk]).explain(user.pk)


def event_explain_members(event: Event, *, limit: int = 100) -> list:
    """``[(username, {channel: (decision, detail)})]`` for the event's audience (the first
    ``limit``): the event's admin page. Three queries, whatever the number of people."""
    members = audiences_get([event])[event.pk][:limit]
    names = dict(get_user_model().objects.filter(pk__in=[m.pk for m in members])
                 .values_list("pk", "username"))
    records = _EventRecords(event, user_ids=list(names))
    return [(names[member.pk], {channel: (found["decision"], found["detail"])
                                for channel, found in records.explain(member.pk).channels.items()})
            for member in members if member.pk in names]


class _EventRecords:
    """What routing recorded for an event and some people: read once, explained per person."""

    def __init__(self, event: Event, *, user_ids: list[int]):
        self.event = event
        self.notified = {}
        self.rows = {}  # (channel, user id or None) -> [deliveries]
        if event.status != Event.Status.ROUTED:
            return
        self.notified = {n.user_id: n for n in Notification.objects.filter(
            event=event, user_id__in=user_ids).only("user_id", "read_at", "repeat_count")}
        for row in Delivery.objects.filter(
                Q(user_id__in=user_ids) | Q(user__isnull=True), event=event,
                channel__in=event.routed_channels or []).order_by("created_at"):
            self.rows.setdefault((row.channel, row.user_id), []).append(row)

    def explain(self, user_id: int) -> Explanation:
        event = self.event
        explanation = Explanation(priority=event.priority, rule_source=event.routing_source)
        names = channel_names()
        if event.status in (Event.Status.PENDING, Event.Status.FAILED):
            why = ("Not routed yet." if event.status == Event.Status.PENDING
                   else f"Routing failed: {event.last_error[:300]}")
            for name in names:
                explanation.set(name, Decision.NOT_ROUTED, why)
            return explanation
        if event.status in STOPPED:
            detail = _stopped_detail(event)
            for name in names:
                explanation.set(name, STOPPED[event.status], detail)
            return explanation
        routed = event.routed_channels or []
        source = RoutingSource.LABELS.get(event.routing_source, event.routing_source)
        for name in names:
            backend = get_backend(name)
            mine = self.rows.get((name, user_id))
            others = self.rows.get((name, None))
            if name not in routed:
                explanation.set(name, Decision.NOT_ROUTED,
                                f"The {source} routes it to {', '.join(routed) or 'no channel'}.")
            elif mine:
                explanation.set(name, *_row_decision(mine[0]))
            elif not backend.external and user_id in self.notified:
                explanation.set(name, Decision.DELIVERED, _bell_detail(self.notified[user_id]))
            elif others:
                explanation.set(name, Decision.DELIVERED,
                                f"Sent to {len(others)} target(s) that are not people "
                                f"({backend.describe_target(others[0].target, None)}, ...).")
            else:
                explanation.set(name, Decision.NOT_IN_AUDIENCE, _not_reached(name, backend))
        return explanation


def routing_explain(*, event_type, workspace, payload: dict, user) -> Explanation:
    """The same, as a dry run: routing and every policy decide for an event of
    ``event_type`` in ``workspace`` with ``payload`` that is not emitted; nothing is
    written and no lock is taken."""
    now = timezone.now()
    event = Event(pk=uuid.uuid4(), event_type=event_type, workspace=workspace,
                  priority=event_type.effective_priority, payload=payload or {},
                  occurred_at=now, created_at=now, status=Event.Status.PENDING)
    plan = events_plan([event], token=None, dry_run=True).events[0]
    explanation = Explanation(priority=event.priority, rule_source=plan.routing.source)
    names = channel_names()
    if plan.verdict is not None:
        for name in names:
            explanation.set(name, plan.verdict.decision, plan.verdict.detail)
        return explanation
    source = plan.routing.source_label
    routes = {route.channel: route for route in plan.routes}
    in_audience = any(member.pk == user.pk for member in plan.members)
    for name in names:
        route = routes.get(name)
        if route is None:
            explanation.set(name, Decision.NOT_ROUTED,
                            f"The {source} routes it to {', '.join(routes) or 'no channel'}.")
            continue
        mine = next((r for r in route.recipients if r.user_id == user.pk), None)
        others = [r for r in route.recipients if r.user_id is None]
        if mine is not None:
            verdict = route.verdicts.get(mine.key)
            if verdict is not None:
                explanation.set(name, verdict.decision, verdict.detail)
            elif route.bucket:
                explanation.set(name, Decision.DIGEST,
                                f"In the {route.bucket} digest ({source}).")
            else:
                explanation.set(name, Decision.DELIVERED, f"Sent at once ({source}).")
        elif others and not any(r.user_id for r in route.recipients):
            explanation.set(name, Decision.DELIVERED,
                            f"Sent to {len(others)} target(s) that are not people "
                            f"({route.backend.describe_target(others[0].target, None)}, ...).")
        else:
            why = (_not_reached(name, route.backend) if in_audience
                   else "Not in the event's audience (its workspace's members, or staff "
                        "for an event without a workspace).")
            explanation.set(name, Decision.NOT_IN_AUDIENCE, why)
    return explanation


def _row_decision(row: Delivery) -> tuple[str, str]:
    if row.status == Delivery.Status.HELD:
        return Decision.HELD, row.reason
    if row.status == Delivery.Status.SKIPPED:
        return row.decision, row.reason
    if row.bucket:
        where = f"digest {row.digest_id}" if row.digest_id else "a digest still to be flushed"
        return Decision.DIGEST, f"In the {row.bucket} digest: {where} ({row.status})."
    state = f"{row.status}, {row.attempts} attempt(s)"
    if row.last_error:
        state += f": {row.last_error[:200]}"
    return Decision.DELIVERED, f"Sent at once ({state})."


def _bell_detail(notification: Notification) -> str:
    state = "read" if notification.read_at else "unread"
    repeats = f", {notification.repeat_count} repeat(s) folded in" if (
        notification.repeat_count) else ""
    return f"In the bell ({state}{repeats})."


def _not_reached(name: str, backend) -> str:
    return (f"Not reached on {backend.label}: not in the event's audience when it was routed, "
            "or no target on this channel (e.g. no email address).")


def _stopped_detail(event: Event) -> str:
    if event.status == Event.Status.SILENCED:
        silence = Silence.objects.filter(pk=event.silenced_by).first()
        comment = f": {silence.comment[:200]}" if silence else ""
        return f"Silenced by silence {event.silenced_by}{comment}"
    if event.status == Event.Status.GROUPED:
        return f"A repeat of event {event.grouped_into}: counted on its notification."
    if event.status == Event.Status.INHIBITED:
        return (f"Inhibited by event {event.inhibited_by}, unresolved when this one was "
                "routed (an inhibit rule).")
    return f"Notifications of {event.event_type.key} were disabled when it was routed."
