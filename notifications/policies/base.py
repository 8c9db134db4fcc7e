"""The policy interface, and the ordered list routing runs."""

from functools import cache
from typing import ClassVar

from django.conf import settings
from django.db.models import Q
from django.utils.module_loading import import_string

from ..routing.plan import RoutingPlan


class Policy:
    """One delivery rule, applied to a whole batch at once.

    ``apply`` reads what it needs for the batch (a constant number of queries, whatever the
    number of events, recipients, or of the policy's own rows) and decides: a verdict on a
    whole event (``plan.stop_event``) or on one (recipient, channel) pair
    (``plan.decide``: held until a time, or dropped with a reason). It writes nothing: a
    dry run (explain) applies it too. A policy that keeps state of its own writes it in
    ``commit``, which runs in the routing transaction after the plan's rows are recorded.

    ``scope``: a user's standing choice (``"user"``: preferences, mutes, quiet hours) or an
    admin's setting (``"admin"``). User-scope policies read only the routes
    ``plan.routes(open_to_user_choices=True)`` gives them.
    """

    name: ClassVar[str]
    scope: ClassVar[str] = "admin"

    def apply(self, plan: RoutingPlan) -> None:
        raise NotImplementedError

    def commit(self, plan: RoutingPlan) -> None:
        """Write the policy's own state for ``plan`` (nothing by default)."""


@cache
def _load(paths: tuple[str, ...]) -> tuple[Policy, ...]:
    return tuple(import_string(path)() for path in paths)


def active_policies() -> tuple[Policy, ...]:
    """The policies of ``DATAFI_ROUTING_POLICIES``, in order (loaded once per list)."""
    return _load(tuple(settings.DATAFI_ROUTING_POLICIES))


def audience_filter(events, *, user: str = "user") -> Q:
    """The rows of the users ``events`` may reach (``user`` names the user field), narrowed
    the way ``audiences_get`` narrows (the workspaces' members, the explicit recipients,
    staff): a policy's query never grows with other workspaces' users, nor with the size of
    the audience as an IN list."""
    workspace_ids = {e.workspace_id for e in events if e.workspace_id is not None}
    recipients = {pk for e in events if e.workspace_id is None for pk in e.recipient_ids or ()}
    audience = Q(pk__in=[])
    if workspace_ids:
        audience |= Q(**{f"{user}__memberships__workspace_id__in": workspace_ids})
    if recipients:
        audience |= Q(**{f"{user}_id__in": recipients})
    if any(e.workspace_id is None and not e.recipient_ids for e in events):
        audience |= Q(**{f"{user}__is_staff": True})
    return audience


def user_routes(plan) -> list:
    """The routes users' standing choices apply to (not protected, with recipients who are
    users)."""
    return [route for route in plan.routes(open_to_user_choices=True)
            if any(r.user_id for r in route.recipients)]
