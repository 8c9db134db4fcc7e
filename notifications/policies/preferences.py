"""A user who switched a category off on a channel gets nothing of it there, now or in a
digest (``/api/preferences/``)."""

from ..models import NotificationPreference
from ..routing.plan import Decision, Scope, Verdict
from .base import Policy, audience_filter


class Preferences(Policy):
    name = "preferences"
    scope = Scope.USER

    def apply(self, plan) -> None:
        """One query for the batch: the opt-outs of the audience's users in the batch's
        categories, on the channels users choose."""
        routes = [route for route in plan.routes(open_to_user_choices=True)
                  if route.backend.user_choosable and route.recipients]
        if not routes:
            return
        events = {route.event.pk: route.event for route in routes}.values()
        opted_out = set(NotificationPreference.objects.filter(
            audience_filter(events), enabled=False,
            category_id__in={route.event.event_type.category_id for route in routes},
            channel__in={route.channel for route in routes},
        ).values_list("user_id", "category_id", "channel").distinct())
        if not opted_out:
            return
        for route in routes:
            category = route.event.event_type.category
            for recipient in route.recipients:
                if (recipient.user_id, category.pk, route.channel) in opted_out:
                    plan.decide(route, recipient, Verdict(
                        decision=Decision.PREFERENCE_OFF, policy=self.name, scope=self.scope,
                        detail=f"{route.backend.label} for {category.name} is switched off "
                               "in the user's preferences."))

