"""Reads of the bell: a user's notifications, unread counts, the version behind the ETag."""

import hashlib
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, QuerySet
from django.utils.dateparse import parse_datetime

from events.catalog import Priority

from ..models import Notification

#: The event's state every recipient's copy shows: annotation -> event field.
EVENT_STATE = {"acknowledged_at": "acknowledged_at", "acknowledged_by": "acknowledged_by_name",
               "escalated_at": "escalated_at", "resolved_at": "resolved_at"}


def notification_list(*, user, unread: bool | None = None, priority: str | None = None,
                      category: str | None = None, workspace: str | None = None,
                      snoozed: bool | None = False) -> QuerySet:
    """The user's own notifications, newest first: not snoozed ones by default,
    ``snoozed=True`` the snoozed ones, ``snoozed=None`` all.

    Each carries ``workspace_public_id``, ``workspace_name``, ``event_payload``,
    ``event_occurred_at`` and the event's acknowledgement, escalation and resolution
    (``EVENT_STATE``), from the same query: the workspace and event rows are joined for those
    values, not loaded as objects.
    """
    notifications = Notification.objects.filter(user=user).annotate(
        workspace_public_id=F("workspace__public_id"), workspace_name=F("workspace__name"),
        event_payload=F("event__payload"), event_occurred_at=F("event__occurred_at"),
        **{name: F(f"event__{field}") for name, field in EVENT_STATE.items()})
    if unread is not None:
        notifications = notifications.filter(read_at__isnull=unread)
    if snoozed is not None:
        notifications = notifications.filter(snoozed_until__isnull=not snoozed)
    if priority:
        notifications = notifications.filter(priority=priority)
    if category:
        notifications = notifications.filter(category=category)
    if workspace:
        notifications = notifications.filter(workspace__public_id=workspace)
    return notifications.order_by("-id")


def notification_unread_count(*, user) -> dict:
    """``{"count": N, "by_priority": {priority: n}}``; a digest counts once, a snoozed
    notification not at all. One query."""
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
FROM {table} WHERE user_id = %(user)s AND read_at IS NULL AND snoozed_until IS NULL
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
