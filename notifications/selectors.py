"""Reads: effective routing, audiences, a user's notifications."""

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.utils.dateparse import parse_datetime

from channels_app.backends import EndpointTarget
from channels_app.models import Channel, DigestSetting, WebhookEndpoint
from channels_app.selectors import webhook_endpoint_targets
from events.catalog import Priority
from events.models import Category, Event, EventType, Membership

from .models import (
    BUCKET_BY_PRIORITY,
    DEFAULT_CHANNELS,
    Bucket,
    Delivery,
    DeliveryAttempt,
    Notification,
    NotificationPreference,
    RoutingRule,
    RoutingVersion,
)


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
        """Event type rule, else category rule, else the default of the effective priority."""
        priority = priority or event_type.effective_priority
        rule = self.by_event_type.get(event_type.pk)
        if rule is not None:
            return EffectiveRouting(priority, list(rule.channels), RoutingSource.EVENT_TYPE_RULE,
                                    rule)
        rule = self.by_category.get(event_type.category_id)
        if rule is not None:
            return EffectiveRouting(priority, list(rule.channels), RoutingSource.CATEGORY_RULE,
                                    rule)
        return EffectiveRouting(priority, list(DEFAULT_CHANNELS[priority]),
                                RoutingSource.PRIORITY_DEFAULT, None)


def routing_get(event_type: EventType, *, priority: str | None = None) -> EffectiveRouting:
    rules = RoutingRule.objects.filter(
        Q(event_type=event_type) | Q(category=event_type.category_id)
    )
    return RoutingRules(rules).resolve(event_type, priority=priority)


def digest_switches() -> dict[str, bool]:
    """Channel -> digests on; a channel without a setting batches."""
    return dict(DigestSetting.objects.values_list("channel", "digest_enabled"))


@dataclass(frozen=True)
class RoutingConfig:
    """What routing reads as configuration: rules, digest switches, active endpoints."""

    rules: RoutingRules
    switches: dict[str, bool]
    endpoints: list[EndpointTarget]


#: SQL of the routing version token, for the query that locks the events being routed.
ROUTING_TOKEN_SQL = (
    f"SELECT token FROM {RoutingVersion._meta.db_table} WHERE id = {RoutingVersion.SINGLETON}"
)

# The configuration read under one routing version token; replaced as a whole, so a
# thread sees either the old pair or the new one.
_routing_config: tuple[str | None, RoutingConfig | None] = (None, None)


def routing_config_get(*, token: str | None) -> RoutingConfig:
    """The routing configuration, from this process's cache when ``token`` is the one it was
    read under; otherwise three queries (rules, switches, endpoints).

    ``token`` is ``RoutingVersion``'s, read by the caller in a query it makes anyway (the
    one that locks the events, ``ROUTING_TOKEN_SQL``). Any change to a rule, a switch or an
    endpoint's routing fields changes it (a database trigger), so a change made anywhere is
    seen by the next route in every process. No token, no caching.
    """
    global _routing_config
    cached_token, cached = _routing_config
    if token is not None and token == cached_token:
        return cached
    config = RoutingConfig(rules=RoutingRules(), switches=digest_switches(),
                           endpoints=webhook_endpoint_targets())
    if token is not None:  # read after the token: at worst cached under an older token
        _routing_config = (token, config)
    return config


def delivery_bucket(*, priority: str, channel: str, switches: dict[str, bool]) -> str:
    """The digest bucket a delivery waits in, or "" to send it now.

    Critical and high are immediate whatever the settings; a channel with digests switched
    off sends every priority immediately.
    """
    if priority in Priority.IMMEDIATE or not switches.get(channel, True):
        return ""
    return BUCKET_BY_PRIORITY[priority]


_MEMBERS_SQL = (
    f"SELECT m.workspace_id, u.id, u.email FROM {Membership._meta.db_table} m "
    f"JOIN {get_user_model()._meta.db_table} u ON u.id = m.user_id "
    "WHERE m.workspace_id IN ({}) AND u.is_active = %s ORDER BY u.id"
)


class AudienceMember(NamedTuple):
    """One user an event is for: what the channel backends read of a user."""

    pk: int
    email: str


def audiences_get(events: list[Event]) -> dict[Any, list[AudienceMember]]:
    """Event id -> who it is for: its explicit recipients, else its workspace's members,
    else staff; active users only, each list in user id order.

    At most two queries for any number of events (workspace members of every workspace
    concerned; staff and explicit recipients of events without a workspace), loading user
    ids and addresses only.
    """
    workspace_ids = {e.workspace_id for e in events if e.workspace_id is not None}
    members: dict[int, list[AudienceMember]] = {}
    if workspace_ids:
        with connection.cursor() as cursor:  # by hand: a route's fixed cost, ORM-free
            cursor.execute(_MEMBERS_SQL.format(", ".join(["%s"] * len(workspace_ids))),
                           [*workspace_ids, True])
            rows = cursor.fetchall()
        for workspace_id, user_id, email in rows:
            members.setdefault(workspace_id, []).append(AudienceMember(user_id, email))
    loose = [e for e in events if e.workspace_id is None]
    staff, named = [], {}
    if loose:
        wanted = {pk for e in loose for pk in e.recipient_ids or ()}
        condition = Q(is_staff=True) | Q(pk__in=wanted) if wanted else Q(is_staff=True)
        rows = (get_user_model().objects.filter(condition, is_active=True).order_by("pk")
                .values_list("pk", "email", "is_staff"))
        for pk, email, is_staff in rows:
            named[pk] = AudienceMember(pk, email)
            if is_staff:
                staff.append(named[pk])
    audiences = {}
    for event in events:
        if event.workspace_id is not None:
            people = members.get(event.workspace_id, [])
            if event.recipient_ids:
                wanted = set(event.recipient_ids)
                people = [m for m in people if m.pk in wanted]
        elif event.recipient_ids:
            people = [named[pk] for pk in sorted(set(event.recipient_ids)) if pk in named]
        else:
            people = staff
        audiences[event.pk] = people
    return audiences


class AudienceCheck:
    """Whether users are still in an event's audience; two queries for any number of users.

    The rules of ``audiences_get``: active users only; the workspace's members for a
    workspace event, the explicit recipients, or staff for an event without either.
    """

    def __init__(self, *, user_ids):
        users = get_user_model().objects.filter(pk__in=user_ids, is_active=True)
        self.staff = dict(users.values_list("pk", "is_staff"))
        self.memberships = set(
            Membership.objects.filter(user_id__in=self.staff).values_list("user_id",
                                                                          "workspace_id")
        )

    def allows(self, event: Event, user_id: int) -> bool:
        if user_id not in self.staff:
            return False
        if event.workspace_id is not None:
            return (user_id, event.workspace_id) in self.memberships
        if event.recipient_ids:
            return user_id in event.recipient_ids
        return self.staff[user_id]


def notification_list(*, user, unread: bool | None = None, priority: str | None = None,
                      category: str | None = None, workspace: str | None = None) -> QuerySet:
    """The user's own notifications, newest first.

    Each carries ``workspace_public_id``, ``workspace_name``, ``event_payload`` and
    ``event_occurred_at`` (from the same query): the workspace and event rows are joined for
    those values, not loaded as objects.
    """
    notifications = Notification.objects.filter(user=user).annotate(
        workspace_public_id=F("workspace__public_id"), workspace_name=F("workspace__name"),
        event_payload=F("event__payload"), event_occurred_at=F("event__occurred_at"))
    if unread is not None:
        notifications = notifications.filter(read_at__isnull=unread)
    if priority:
        notifications = notifications.filter(priority=priority)
    if category:
        notifications = notifications.filter(category=category)
    if workspace:
        notifications = notifications.filter(workspace__public_id=workspace)
    return notifications.order_by("-id")


def notification_unread_count(*, user) -> dict:
    """``{"count": N, "by_priority": {priority: n}}``; a digest counts once. One query."""
    return notification_bell_state(user=user).unread


def notification_version(*, user) -> str:
    """A token that changes whenever ``user``'s bell would show something else (one query;
    see ``notification_bell_state``); the bell's ETag is derived from it."""
    return notification_bell_state(user=user).version


@dataclass(frozen=True)
class BellState:
    version: str
    unread: dict  # {"count": N, "by_priority": {priority: n}}


_BELL_STATE_SQL = """
SELECT (SELECT id FROM {table} WHERE user_id = %(user)s ORDER BY id DESC LIMIT 1),
       (SELECT updated_at FROM {table} WHERE user_id = %(user)s
        ORDER BY updated_at DESC LIMIT 1),
       {counts}
FROM {table} WHERE user_id = %(user)s AND read_at IS NULL
"""


def notification_bell_state(*, user) -> BellState:
    """What the bell shows in one query: the version token and the unread counts.

    The version is built from the newest notification id, the unread count and the latest
    read-state change (``Notification.updated_at``): a new notification, a read, an unread,
    a read-all or a deletion of the newest moves it. Three index lookups
    (``notification_user_idx``, ``notification_unread_idx``, ``notification_updated_idx``),
    whatever the number of notifications.
    """
    counts = ", ".join(f"count(*) FILTER (WHERE priority = %(p{n})s)"
                       for n in range(len(Priority.VALUES)))
    sql = _BELL_STATE_SQL.format(table=Notification._meta.db_table, counts=counts)
    params = {"user": user.pk, **{f"p{n}": p for n, p in enumerate(Priority.VALUES)}}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        newest, changed, *numbers = cursor.fetchone()
    by_priority = dict(zip(Priority.VALUES, numbers, strict=True))
    unread = sum(numbers)
    if isinstance(changed, str):  # SQLite hands back the stored text
        changed = parse_datetime(changed)
    stamp = changed.timestamp() if changed else 0
    raw = f"{user.pk}:{newest or 0}:{unread}:{stamp:.6f}"
    return BellState(version=hashlib.sha256(raw.encode()).hexdigest()[:32],
                     unread={"count": unread, "by_priority": by_priority})


def preferences_get(*, user) -> dict[str, dict[str, bool]]:
    """Category slug -> channel -> on, for every category and chooseable channel.

    What ``user`` has not chosen is on (the default). Two queries.
    """
    stored = {
        (slug, channel): enabled
        for slug, channel, enabled in NotificationPreference.objects.filter(user=user)
        .values_list("category__slug", "channel", "enabled")
    }
    return {
        slug: {channel: stored.get((slug, channel), True)
               for channel in NotificationPreference.CHANNELS}
        for slug in Category.objects.order_by("position", "slug").values_list("slug", flat=True)
    }


def preference_opt_outs_get(events: list[Event]) -> set[tuple[int, int, str]]:
    """(user id, category id, channel) of the users who switched a category of ``events``
    off on a channel; one query for any number of events, none when all are critical.

    Critical events are delivered whatever the preference: their categories are not asked
    for. The query is narrowed the way ``audiences_get`` narrows (the workspaces' members,
    the explicit recipients, staff), so it never grows with other workspaces' users.
    """
    chosen = [e for e in events if e.priority != Priority.CRITICAL]
    if not chosen:
        return set()
    workspace_ids = {e.workspace_id for e in chosen if e.workspace_id is not None}
    recipients = {pk for e in chosen if e.workspace_id is None for pk in e.recipient_ids or ()}
    audience = Q()
    if workspace_ids:
        audience |= Q(user__memberships__workspace_id__in=workspace_ids)
    if recipients:
        audience |= Q(user_id__in=recipients)
    if any(e.workspace_id is None and not e.recipient_ids for e in chosen):
        audience |= Q(user__is_staff=True)
    opt_outs = NotificationPreference.objects.filter(
        audience, category_id__in={e.event_type.category_id for e in chosen}, enabled=False)
    return set(opt_outs.values_list("user_id", "category_id", "channel").distinct())


def delivery_list(*, channel: str | None = None, status: str | None = None,
                  bucket: str | None = None, event_type: str | None = None,
                  endpoint: int | None = None) -> QuerySet:
    """Deliveries, newest first, with their event type loaded; ``event_type="digest"``
    gives the digests' own deliveries."""
    deliveries = Delivery.objects.select_related("event__event_type", "user")
    if channel:
        deliveries = deliveries.filter(channel=channel)
    if status:
        deliveries = deliveries.filter(status=status)
    if bucket:
        deliveries = deliveries.filter(bucket=bucket)
    if event_type == "digest":
        deliveries = deliveries.filter(kind=Delivery.Kind.DIGEST)
    elif event_type:
        deliveries = deliveries.filter(event__event_type__key=event_type)
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint)
    return deliveries.order_by("-created_at", "-pk")


def delivery_attempt_list(*, delivery: Delivery) -> QuerySet:
    """The attempts of ``delivery``, first to last."""
    return DeliveryAttempt.objects.filter(delivery=delivery).order_by("number")


def pending_digest_counts() -> dict[tuple[str, str], int]:
    """(bucket, channel) -> number of deliveries waiting for a flush."""
    rows = (
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .exclude(bucket="")
        .values("bucket", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(row["bucket"], row["channel"]): row["n"] for row in rows}


def pending_digest_table() -> dict[str, dict[str, int]]:
    """Bucket -> channel -> pending items, every bucket and channel present."""
    counts = pending_digest_counts()
    return {bucket: {channel: counts.get((bucket, channel), 0) for channel in Channel.values}
            for bucket in Bucket.values}


# --- webhook endpoints with their delivery log --------------------------------------------

#: A webhook's sent messages: events sent alone and digests (not the events inside digests).
WEBHOOK_SENDS = Q(channel=Channel.WEBHOOK) & (Q(kind=Delivery.Kind.DIGEST) | Q(bucket=""))
FINISHED = (Delivery.Status.DELIVERED, Delivery.Status.FAILED)
RECENT_FOR_RATE = 100


def _count_of(queryset) -> Subquery:
    return Subquery(queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
                    output_field=IntegerField())


def webhook_endpoint_list() -> QuerySet:
    """Endpoints with ``last_delivery_status`` and, over their last 100 finished deliveries,
    ``recent_finished`` and ``recent_delivered``: subqueries, one query for any page."""
    sends = Delivery.objects.filter(WEBHOOK_SENDS, endpoint_id=OuterRef("pk"))
    recent = (Delivery.objects.filter(WEBHOOK_SENDS, endpoint_id=OuterRef(OuterRef("pk")),
                                      status__in=FINISHED)
              .order_by("-created_at").values("pk")[:RECENT_FOR_RATE])
    return WebhookEndpoint.objects.select_related("workspace").annotate(
        last_delivery_status=Subquery(sends.order_by("-created_at").values("status")[:1]),
        recent_finished=_count_of(Delivery.objects.filter(pk__in=recent)),
        recent_delivered=_count_of(Delivery.objects.filter(
            pk__in=recent, status=Delivery.Status.DELIVERED)),
    )


def webhook_delivery_list(*, endpoint_id: int, status: str | None = None) -> QuerySet:
    """One endpoint's sent messages, newest first, with their event type and attempts."""
    deliveries = (Delivery.objects.filter(WEBHOOK_SENDS, endpoint_id=endpoint_id)
                  .select_related("event__event_type")
                  .prefetch_related("attempt_log"))
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-created_at", "-pk")
