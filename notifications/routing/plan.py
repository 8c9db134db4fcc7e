"""What routing means for a batch of events, before anything is written: the plan.

``plan_build`` resolves each event's channels (rules), its audience and each channel's
targets; the delivery policies (``notifications.policies``) then decide, set-based, what
happens to whole events and to single (recipient, channel) pairs; ``routing.record``
writes the outcome. A dry run (explain) builds and decides the same plan and writes
nothing.

A route's recipients are delivered as routing decided (now, or in their digest bucket)
unless a policy gave one a verdict: held until a time, or dropped with a reason. A whole
event may get a verdict too (disabled, silenced, ...): then none of its routes is written.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from channels_app.backends import ChannelBackend, Recipient, get_backend
from events.models import Event

from .audience import audiences_get
from .rules import EffectiveRouting, RoutingConfig


class Decision:
    """What happened to an event on a channel for one person: explain's vocabulary."""

    DELIVERED = "delivered"
    DIGEST = "digest"
    HELD = "held"
    MUTED = "muted"
    SILENCED = "silenced"
    INHIBITED = "inhibited"
    GROUPED = "grouped"
    PREFERENCE_OFF = "preference_off"
    NOT_IN_AUDIENCE = "not_in_audience"
    DISABLED = "disabled"
    NOT_ROUTED = "not_routed"

    VALUES = (DELIVERED, DIGEST, HELD, MUTED, SILENCED, INHIBITED, GROUPED, PREFERENCE_OFF,
              NOT_IN_AUDIENCE, DISABLED, NOT_ROUTED)


class Scope:
    """Whose choice a verdict carries out: a user's standing choice, or an admin's setting."""

    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Verdict:
    """A policy's decision, instead of delivering as routing planned."""

    decision: str  # a Decision other than delivered/digest
    detail: str  # a human sentence: why
    policy: str  # the policy's name
    scope: str = Scope.ADMIN
    release_at: datetime | None = None  # for HELD: when it goes out
    by_id: str = ""  # what decided it, e.g. a silence's id (explain names it)


@dataclass
class ChannelRoute:
    """One event on one channel: its targets, and where they wait ("" = sent now)."""

    event: Event
    backend: ChannelBackend
    bucket: str
    recipients: list[Recipient]
    #: Recipient key -> the verdict replacing the planned delivery.
    verdicts: dict[tuple, Verdict] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return self.backend.name

    def to_deliver(self) -> list[Recipient]:
        """The recipients no policy held or dropped."""
        if not self.verdicts:
            return self.recipients
        return [r for r in self.recipients if r.key not in self.verdicts]


@dataclass
class EventPlan:
    event: Event
    routing: EffectiveRouting
    members: list
    routes: list[ChannelRoute]
    #: A verdict on the whole event (nothing of it is written), and the event's status then.
    verdict: Verdict | None = None
    status: str = Event.Status.ROUTED
    #: Users' standing choices (preferences, mutes, quiet hours) do not apply to it; the
    #: policy that says so is named here, for explain.
    protected_by: str = ""


@dataclass
class RoutingPlan:
    events: list[EventPlan]
    config: RoutingConfig
    #: A dry run (explain): nothing will be recorded, so policies take no locks.
    dry_run: bool = False
    #: What a policy's ``apply`` leaves for its ``commit``, by policy name.
    state: dict = field(default_factory=dict)

    def live(self) -> Iterator[EventPlan]:
        """The events no policy stopped as a whole."""
        return (plan for plan in self.events if plan.verdict is None)

    def routes(self, *, open_to_user_choices: bool = False) -> Iterator[ChannelRoute]:
        """Every route of the live events; with ``open_to_user_choices``, only those of
        events whose users' choices apply (not protected, e.g. critical)."""
        for plan in self.live():
            if open_to_user_choices and plan.protected_by:
                continue
            yield from plan.routes

    def stop_event(self, plan: EventPlan, verdict: Verdict, *, status: str) -> None:
        """Nothing of ``plan``'s event is delivered; it is recorded with ``status``."""
        if plan.verdict is None:
            plan.verdict, plan.status = verdict, status

    def decide(self, route: ChannelRoute, recipient: Recipient, verdict: Verdict) -> None:
        """``recipient`` gets ``verdict`` on ``route`` instead of the planned delivery; the
        first policy to decide wins."""
        route.verdicts.setdefault(recipient.key, verdict)


def plan_build(events: list[Event], config: RoutingConfig, *,
               dry_run: bool = False) -> RoutingPlan:
    """Resolve each event's channels, audience and targets. Events need their event type and
    category loaded. Two queries at most (the audiences), whatever the number of events."""
    audiences = audiences_get(events)
    plans = []
    for event in events:
        routing = config.rules.resolve(event.event_type, priority=event.priority)
        members = audiences[event.pk]
        routes = []
        for channel in routing.channels:
            backend = get_backend(channel)
            if backend is None:  # a rule names a channel whose app is not installed
                continue
            recipients = backend.targets(event=event, members=members, rule=routing.rule,
                                         config=config.channels.get(channel))
            routes.append(ChannelRoute(
                event=event, backend=backend, recipients=recipients,
                bucket=config.bucket(priority=event.priority, channel=channel)))
        plans.append(EventPlan(event=event, routing=routing, members=members, routes=routes))
    return RoutingPlan(events=plans, config=config, dry_run=dry_run)
