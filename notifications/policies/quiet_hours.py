"""A user's quiet hours: messages that would interrupt them (email; ``ChannelBackend.
interrupts``) are held until the quiet hours end, then sent together as one digest (the
held-release sweep, ``services.held``). The bell is written as usual; critical events go
out at once (``CriticalAlways``).

Quiet hours are wall-clock times in the user's own time zone (IANA, ``zoneinfo``) and may
cross midnight (22:00-07:00). They end at the first moment the user's clock shows the end
time or later: on a night the clocks go forward past it (a time that does not exist), that
is the moment of the change; on a night they go back over it (a time that happens twice),
its first occurrence.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from ..models import UserNotificationSettings
from ..routing.plan import Decision, Scope, Verdict
from .base import Policy, audience_filter, user_routes


def quiet_until(now: datetime, *, zone: str, start: time, end: time) -> datetime | None:
    """When the quiet hours ``now`` falls in end (aware, UTC), or None outside them."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    wall = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= wall < end, local.date()
    else:  # crosses midnight
        inside = wall >= start or wall < end
        end_day = local.date() if wall < end else local.date() + timedelta(days=1)
    if not inside:
        return None
    return first_moment_at(tz, datetime.combine(end_day, end))


def first_moment_at(tz: ZoneInfo, wall: datetime) -> datetime:
    """The first instant (UTC) at which a clock in ``tz`` shows ``wall`` (naive) or later."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if second >= first:  # a time that exists once, or twice (the first is fold 0)
        return first
    # A time the clocks skip: the answer is the moment of the change, between the two.
    low, high = second, first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def in_quiet_hours(settings: UserNotificationSettings, now: datetime) -> datetime | None:
    """``quiet_until`` for a user's stored settings (None without quiet hours)."""
    if settings is None or settings.quiet_start is None:
        return None
    return quiet_until(now, zone=settings.timezone, start=settings.quiet_start,
                       end=settings.quiet_end)


class QuietHours(Policy):
    name = "quiet_hours"
    scope = Scope.USER

    def apply(self, plan) -> None:
        """One query for the batch: the quiet hours of the audience's users."""
        routes = [route for route in user_routes(plan) if route.backend.interrupts]
        if not routes:
            return
        events = {route.event.pk: route.event for route in routes}.values()
        now = timezone.now()
        held = {}
        for user_id, zone, start, end in UserNotificationSettings.objects.filter(
                audience_filter(events), quiet_start__isnull=False).values_list(
                "user_id", "timezone", "quiet_start", "quiet_end"):
            until = quiet_until(now, zone=zone, start=start, end=end)
            if until is not None:
                local_end = until.astimezone(ZoneInfo(zone))
                held[user_id] = (until, f"Quiet hours {start:%H:%M}-{end:%H:%M} ({zone}): "
                                        f"held until {local_end:%Y-%m-%d %H:%M} there.")
        if not held:
            return
        for route in routes:
            for recipient in route.recipients:
                if recipient.user_id in held:
                    until, detail = held[recipient.user_id]
                    plan.decide(route, recipient, Verdict(
                        decision=Decision.HELD, policy=self.name, scope=self.scope,
                        detail=detail, release_at=until))
