"""Which channels an event goes to, and the configuration routing reads (cached).

The most specific rule wins: an event type's rule, else its category's, else the default
channels of the event's priority (the setting ``DATAFI_DEFAULT_CHANNELS``).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Q

from channels_app.backends import registered_backends
from channels_app.services.digests import digest_switches
from events.catalog import Priority
from events.models import EventType
from events.routing_view import EventTypeRouting

from ..models import BUCKET_BY_PRIORITY, RoutingRule, RoutingVersion


class RoutingSource:
    EVENT_TYPE_RULE = "event_type_rule"
    CATEGORY_RULE = "category_rule"
    PRIORITY_DEFAULT = "priority_default"

    LABELS = {
        EVENT_TYPE_RULE: "event type rule",
        CATEGORY_RULE: "category rule",
        PRIORITY_DEFAULT: "priority default",
    }


@dataclass(frozen=True)
class EffectiveRouting:
    priority: str
    channels: list[str]
    source: str
    rule: RoutingRule | None

    @property
    def source_label(self) -> str:
        return RoutingSource.LABELS[self.source]


class RoutingRules:
    """All routing rules, loaded with one query, to resolve any number of event types."""

    def __init__(self, rules=None):
        if rules is None:
            rules = RoutingRule.objects.all()
        self.by_event_type = {}
        self.by_category = {}
        for rule in rules:
            if rule.event_type_id:
                self.by_event_type[rule.event_type_id] = rule
            else:
                self.by_category[rule.category_id] = rule

    def resolve(self, event_type: EventType, *, priority: str | None = None) -> EffectiveRouting:
        """Event type rule, else category rule, else the default of the effective priority
    (``DATAFI_DEFAULT_CHANNELS``)."""
        priority = priority or event_type.effective_priority
        rule = self.by_event_type.get(event_type.pk)
        if rule is not None:
            return EffectiveRouting(priority, list(rule.channels), RoutingSource.EVENT_TYPE_RULE,
                                    rule)
        rule = self.by_category.get(event_type.category_id)
        if rule is not None:
            return EffectiveRouting(priority, list(rule.channels), RoutingSource.CATEGORY_RULE,
                                    rule)
        return EffectiveRouting(priority, list(settings.DATAFI_DEFAULT_CHANNELS[priority]),
                                RoutingSource.PRIORITY_DEFAULT, None)


def describe_event_types():
    """For the catalog's views: every rule loaded once, then each event type described."""
    rules = RoutingRules()

    def describe(event_type: EventType) -> EventTypeRouting:
        routing = rules.resolve(event_type)
        return EventTypeRouting(
            channels=routing.channels, source=routing.source, source_label=routing.source_label,
            extra_emails=list(routing.rule.extra_emails) if routing.rule else [])

    return describe


def routing_get(event_type: EventType, *, priority: str | None = None) -> EffectiveRouting:
    """The channels of one event type (two rules at most are read)."""
    rules = RoutingRule.objects.filter(
        Q(event_type=event_type) | Q(category=event_type.category_id)
    )
    return RoutingRules(rules).resolve(event_type, priority=priority)


T = TypeVar("T")


@dataclass(frozen=True)
class RoutingConfig:
    """What routing reads as configuration: rules, digest switches, and each channel's own
    (``ChannelBackend.load_config``, e.g. the active webhook endpoints' filters)."""

    rules: RoutingRules
    switches: dict[str, bool]
    channels: dict[str, Any]
    _remembered: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def remembered(self, key: str, read: Callable[[], T]) -> T:
        """``read()`` once per configuration version, for a policy's own configuration
        whose tables change the routing version token too (silences, inhibit rules:
        migration ``0015``); read again once the token changes, as the rest is."""
        if key not in self._remembered:
            self._remembered[key] = read()
        return self._remembered[key]

    def bucket(self, *, priority: str, channel: str) -> str:
        """The digest bucket a delivery on ``channel`` waits in, or "" to send it now.

        Critical and high are immediate whatever the settings; a channel that sends no
        digests, or whose digests an admin switched off, sends every priority now.
        """
        if priority in Priority.IMMEDIATE or not self.switches.get(channel, True):
            return ""
        return BUCKET_BY_PRIORITY[priority]


#: SQL of the routing version token, for the query that locks the events being routed.
ROUTING_TOKEN_SQL = (
    f"SELECT token FROM {RoutingVersion._meta.db_table} WHERE id = {RoutingVersion.SINGLETON}"
)

# The configuration read under one routing version token; replaced as a whole, so a
# thread sees either the old pair or the new one.
_routing_config: tuple[str | None, RoutingConfig | None] = (None, None)


def routing_config_get(*, token: str | None) -> RoutingConfig:
    """The routing configuration, from this process's cache when ``token`` is the one it was
    read under; otherwise read again (rules, switches, and each channel's ``load_config``).

    ``token`` is ``RoutingVersion``'s, read by the caller in a query it makes anyway (the
    one that locks the events, ``ROUTING_TOKEN_SQL``). Any change to a rule, a switch or an
    endpoint's routing fields changes it (a database trigger), so a change made anywhere is
    seen by the next route in every process. No token, no caching.
    """
    global _routing_config
    cached_token, cached = _routing_config
    if token is not None and token == cached_token:
        return cached
    backends = registered_backends()
    switches = digest_switches()
    config = RoutingConfig(
        rules=RoutingRules(),
        switches={b.name: b.sends_digests and switches.get(b.name, True) for b in backends},
        channels={backend.name: backend.load_config() for backend in backends},
    )
    if token is not None:  # read after the token: at worst cached under an older token
        _routing_config = (token, config)
    return config
