"""The policy interface, and the ordered list routing runs."""

from functools import cache
from typing import ClassVar

from django.conf import settings
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
