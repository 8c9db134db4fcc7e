"""Grouped repeats: an event whose type groups by payload keys (``EventType.group_by``) and
that repeats one of the same type, workspace and values within ``repeat_interval_minutes``
of the group's first notification notifies nobody again: it is kept with status
``grouped``, and the first event's in-app notifications count it (``repeat_count``,
``last_occurred_at``: the bell shows "x N"). After the interval the next one notifies.

An admin's setting, so it folds repeats of any priority (a flapping critical source pages
once). Two workers routing repeats of one group at once make one notification: the routing
transaction takes a lock per group key (PostgreSQL advisory locks, in key order; SQLite
serializes writers already) before it reads the open groups, and holds it until the group
it creates has committed.
"""

import hashlib
import json
from collections import defaultdict
from datetime import timedelta

from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from events.models import Event

from ..models import Notification, NotificationGroup
from ..routing.plan import Decision, Verdict
from .base import Policy

#: The advisory lock space of group keys ("Grp").
_LOCK_CLASS = 0x477270


def group_key(event) -> str | None:
    """The group of ``event``: a hash of its type, workspace and ``group_by`` values (None
    when its type does not group, or its payload lacks one of the keys: nothing says it is
    the same as another)."""
    keys = event.event_type.group_by
    payload = event.payload if isinstance(event.payload, dict) else {}
    if not keys or any(key not in payload for key in keys):
        return None
    values = [payload[key] for key in keys]
    raw = json.dumps([event.event_type_id, event.workspace_id, values], sort_keys=True,
                     default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class Grouping(Policy):
    name = "grouping"

    def apply(self, plan) -> None:
        """Two queries for the batch at most: the locks of its group keys, and their open
        groups."""
        keyed = [(event_plan, key) for event_plan in plan.live()
                 if (key := group_key(event_plan.event)) is not None]
        if not keyed:
            return
        keys = sorted({key for _, key in keyed})
        if not plan.dry_run:
            _lock(keys)
        now = timezone.now()
        longest = max(e.event.event_type.repeat_interval_minutes for e, _ in keyed)
        groups = {}  # (event type id, key) -> the newest group that may still be open
        for group in (NotificationGroup.objects.filter(
                key__in=keys, first_at__gte=now - timedelta(minutes=longest))
                .order_by("first_at")):
            groups[(group.event_type_id, group.key)] = group
        state = plan.state.setdefault(self.name, {"new": {}, "repeats": defaultdict(list)})
        for event_plan, key in keyed:
            event = event_plan.event
            interval = timedelta(minutes=event.event_type.repeat_interval_minutes)
            slot = (event.event_type_id, key)
            group = groups.get(slot)
            first = group.first_event_id if group else None
            if group is not None and event.created_at >= group.first_at + interval:
                group = first = None  # that group has closed
            if first is None and slot in state["new"]:
                first = state["new"][slot].pk  # an earlier event of this batch opens it
            if first is None:
                state["new"][slot] = event
                continue
            repeats = state["repeats"][slot]
            repeats.append(event)
            plan.stop_event(event_plan, Verdict(
                decision=Decision.GROUPED, policy=self.name, by_id=str(first),
                detail=f"A repeat of event {first} within "
                       f"{event.event_type.repeat_interval_minutes} minutes: counted on its "
                       "notification."),
                status=Event.Status.GROUPED)
            if group is not None:
                state.setdefault("open", {})[slot] = group

    def commit(self, plan) -> None:
        """The groups this batch opened, and the repeats it counted (on the group and on
        its first event's notifications): a few statements, whatever the batch."""
        state = plan.state.get(self.name)
        if not state:
            return
        NotificationGroup.objects.bulk_create([
            NotificationGroup(event_type_id=event.event_type_id, workspace_id=event.workspace_id,
                              key=key, first_event_id=event.pk, first_at=event.created_at,
                              last_at=event.created_at,
                              repeats=len(state["repeats"].get((type_id, key), ())))
            for (type_id, key), event in state["new"].items()])
        now = timezone.now()
        for slot, repeats in state["repeats"].items():
            latest = max(event.occurred_at for event in repeats)
            group = state.get("open", {}).get(slot)
            first = group.first_event_id if group else state["new"][slot].pk
            if group is not None:
                NotificationGroup.objects.filter(pk=group.pk).update(
                    repeats=F("repeats") + len(repeats), last_at=now)
            Notification.objects.filter(event_id=first).update(
                repeat_count=F("repeat_count") + len(repeats), updated_at=now,
                last_occurred_at=Greatest(F("last_occurred_at"), Value(latest))
                if connection.vendor == "postgresql" else Value(latest))


def _lock(keys: list[str]) -> None:
    """Take this transaction's lock of each group key, in order (no deadlock between two
    batches). SQLite: the transaction's write lock serves already."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k ORDER BY k",
            [_LOCK_CLASS, sorted({int(key[:8], 16) - 2**31 for key in keys})])
