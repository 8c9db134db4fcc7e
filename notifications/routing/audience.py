"""Who an event is for: its explicit recipients, else its workspace's members, else staff."""

from collections import namedtuple
from functools import cache
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q

from channels_app.backends import member_fields
from events.models import Event, Membership


@cache
def member_type(fields: tuple[str, ...]) -> type:
    """The tuple an audience member is: ``pk`` and the user columns channels read."""
    return namedtuple("Member", ["pk", *fields])


def _user_columns(fields: tuple[str, ...]) -> list[str]:
    """The columns of ``fields`` on the user model; a name that is not a concrete field of
    it is refused (it is written into SQL)."""
    user_model = get_user_model()
    return [user_model._meta.get_field(name).column for name in fields]


def audiences_get(events: list[Event]) -> dict[Any, list]:
    """Event id -> who it is for: its explicit recipients, else its workspace's members,
    else staff; active users only, each list in user id order.

    At most two queries for any number of events (workspace members of every workspace
    concerned; staff and explicit recipients of events without a workspace), loading the
    user id and the columns the registered channels read (``ChannelBackend.user_fields``).
    """
    fields = member_fields()
    member = member_type(fields)
    columns = _user_columns(fields)
    user_table = get_user_model()._meta.db_table
    workspace_ids = {e.workspace_id for e in events if e.workspace_id is not None}
    members: dict[int, list] = {}
    if workspace_ids:
        selected = "".join(f', u."{column}"' for column in columns)
        sql = (f"SELECT m.workspace_id, u.id{selected} FROM {Membership._meta.db_table} m "
               f"JOIN {user_table} u ON u.id = m.user_id "
               f"WHERE m.workspace_id IN ({', '.join(['%s'] * len(workspace_ids))}) "
               "AND u.is_active = %s ORDER BY m.workspace_id, u.id")
        with connection.cursor() as cursor:  # by hand: a route's fixed cost, ORM-free
            cursor.execute(sql, [*workspace_ids, True])
            rows = cursor.fetchall()
        values = itemgetter(slice(1, None))  # a row without its workspace id
        for workspace_id, group in groupby(rows, itemgetter(0)):
            members[workspace_id] = list(map(member._make, map(values, group)))
    loose = [e for e in events if e.workspace_id is None]
    staff, named = [], {}
    if loose:
        wanted = {pk for e in loose for pk in e.recipient_ids or ()}
        condition = Q(is_staff=True) | Q(pk__in=wanted) if wanted else Q(is_staff=True)
        rows = (get_user_model().objects.filter(condition, is_active=True).order_by("pk")
                .values_list("pk", *fields, "is_staff"))
        for pk, *values, is_staff in rows:
            named[pk] = member(pk, *values)
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
