"""Delivery policies that exist only for the tests: added through DATAFI_ROUTING_POLICIES,
with no change to routing, the way the next policies (quiet hours, mutes, ...) plug in.
Each reads what it needs for the whole batch in one query."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.policies import Policy
from notifications.routing.plan import Decision, Scope, Verdict


def _users_named(plan, prefix: str) -> set[int]:
    routes = list(plan.routes(open_to_user_choices=True))
    ids = {r.user_id for route in routes for r in route.recipients if r.user_id}
    return set(get_user_model().objects.filter(pk__in=ids, username__startswith=prefix)
               .values_list("pk", flat=True)) if ids else set()


class NightOwlsHoldEmail(Policy):
    """Holds email for users whose name starts with "owl" for an hour (a user's choice)."""

    name = "night_owls"
    scope = Scope.USER

    def apply(self, plan) -> None:
        owls = _users_named(plan, "owl")
        release_at = timezone.now() + timedelta(hours=1)
        for route in plan.routes(open_to_user_choices=True):
            if route.channel != "email":
                continue
            for recipient in route.recipients:
                if recipient.user_id in owls:
                    plan.decide(route, recipient, Verdict(
                        decision=Decision.HELD, policy=self.name, scope=self.scope,
                        detail="An owl sleeps by day.", release_at=release_at))


class MuteEverythingForUsers(Policy):
    """Drops every channel for users named "mute*" (a user's choice: not for critical)."""

    name = "mute_everything"
    scope = Scope.USER

    def apply(self, plan) -> None:
        muted = _users_named(plan, "mute")
        for route in plan.routes(open_to_user_choices=True):
            for recipient in route.recipients:
                if recipient.user_id in muted:
                    plan.decide(route, recipient, Verdict(
                        decision=Decision.MUTED, policy=self.name, scope=self.scope,
                        detail="Muted for the test."))
