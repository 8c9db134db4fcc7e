"""Reads: effective routing, audiences, a user's notifications."""

import hashlib
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.utils.dateparse import parse_datetime

from channels_app.models import Channel, DigestSetting, WebhookEndpoint
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


def delivery_bucket(*, priority: str, channel: str, switches: dict[str, bool]) -> str:
    """The digest bucket a delivery waits in, or "" to send it now.

    Critical and high are immediate whatever the settings; a channel with digests switched
    off sends every priority immediately.
    """
    if priority in Priority.IMMEDIATE or not switches.get(channel, True):
        return ""
    return BUCKET_BY_PRIORITY[priority]


def audience_list(event: Event) -> list:
    """Who an event is for: its explicit recipients, else its workspace's members, else staff.

    Only active users; only id and email are loaded. One query.
    """
    users = get_user_model().objects.filter(is_active=True).only("pk", "email").order_by("pk")
    if event.recipient_ids:
        users = users.filter(pk__in=event.recipient_ids)
        if event.workspace_id:
            users = users.filter(memberships__workspace_id=event.workspace_id)
    elif event.workspace_id:
        users = users.filter(memberships__workspace_id=event.workspace_id)
    else:
        users = users.filter(is_staff=True)
    return list(users)


class AudienceCheck:
    """Whether users are still in an event's audience; two queries for any number of users.

    The rules of ``audience_list``: active users only; the workspace's members for a
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

    Each carries ``workspace_public_id``, ``event_payload`` and ``event_occurred_at`` (from
    the same query): the workspace and event rows are joined for those values, not loaded
    as objects.
    """
    notifications = Notification.objects.filter(user=user).annotate(
        workspace_public_id=F("workspace__public_id"), event_payload=F("event__payload"),
        event_occurred_at=F("event__occurred_at"))
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


def preference_opt_outs(event: Event, *, user_ids) -> set[tuple[int, str]]:
    """(user id, channel) pairs of ``user_ids`` who switched ``event``'s category off.

    Critical events are delivered whatever the preference: empty for them, no query.
    Otherwise one query over the category's opt-outs, narrowed the way ``audience_list``
    narrows (recipients, workspace members, staff) so it never grows with other
    workspaces' users.
    """
    if event.priority == Priority.CRITICAL or not user_ids:
        return set()
    opt_outs = NotificationPreference.objects.filter(
        category_id=event.event_type.category_id, enabled=False)
    if event.recipient_ids:
        opt_outs = opt_outs.filter(user_id__in=event.recipient_ids)
    elif event.workspace_id:
        opt_outs = opt_outs.filter(user__memberships__workspace_id=event.workspace_id)
    else:
        opt_outs = opt_outs.filter(user__is_staff=True)
    wanted = set(user_ids)
    return {(user_id, channel) for user_id, channel in opt_outs.values_list("user_id", "channel")
            if user_id in wanted}


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
