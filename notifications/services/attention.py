"""Attention controls a user or an admin sets: quiet hours, snoozes, mutes, silences.

Each validates everything before it writes and raises ``ApplicationError`` naming the field.
"""

from datetime import datetime, time, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError, Conflict, full_clean
from events.models import Category, EventType, Workspace

from ..models import Delivery, Mute, Notification, Silence, UserNotificationSettings
from ..models.attention import validate_timezone
from ..policies.quiet_hours import in_quiet_hours

SNOOZE_MINUTES_MAX = 30 * 24 * 60  # 30 days
#: The longest a silence may last, and how far ahead it may start.
SILENCE_MAX_DAYS = 366


# --- quiet hours --------------------------------------------------------------------------

def notification_settings_get(*, user) -> UserNotificationSettings:
    """The user's settings (unsaved defaults, UTC and no quiet hours, if none stored)."""
    return (UserNotificationSettings.objects.filter(user=user).first()
            or UserNotificationSettings(user=user))


def parse_clock(value, *, field: str) -> time:
    """``"HH:MM"`` (24-hour) as a time; raises ``ApplicationError`` naming ``field``."""
    try:
        hours, minutes = str(value).split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        raise ApplicationError(f"{str(value)[:20]!r} is not a time of day as HH:MM "
                               "(00:00 to 23:59).", field=field) from None


def notification_settings_set(*, user, timezone_name: str | None = None,
                              quiet_hours=...) -> UserNotificationSettings:
    """Set the user's time zone and/or quiet hours (``None``: none; ``{"start", "end"}``
    as ``"HH:MM"`` in that zone; left out: kept). Held emails follow at once: released now
    if the user is no longer in quiet hours, else at the new end."""
    stored = notification_settings_get(user=user)
    if timezone_name is not None:
        try:
            validate_timezone(timezone_name)
        except Exception as exc:
            raise ApplicationError(" ".join(getattr(exc, "messages", [str(exc)])),
                                   field="timezone") from None
        stored.timezone = timezone_name
    if quiet_hours is not ...:
        if quiet_hours is None:
            stored.quiet_start = stored.quiet_end = None
        else:
            if not isinstance(quiet_hours, dict) or set(quiet_hours) != {"start", "end"}:
                raise ApplicationError('Give null, or {"start": "HH:MM", "end": "HH:MM"}.',
                                       field="quiet_hours")
            start = parse_clock(quiet_hours["start"], field="quiet_hours")
            end = parse_clock(quiet_hours["end"], field="quiet_hours")
            if start == end:
                raise ApplicationError("Quiet hours must end at another time than they start.",
                                       field="quiet_hours")
            stored.quiet_start, stored.quiet_end = start, end
    with transaction.atomic():
        full_clean(stored, validate_unique=False)
        stored.save()
        held_release_reschedule(user_id=user.pk, settings=stored)
    return stored


def held_release_reschedule(*, user_id: int, settings: UserNotificationSettings) -> int:
    """Move the release of the user's held deliveries to when their quiet hours now end
    (now, if they no longer are in them): the release sweep sends them."""
    now = timezone.now()
    until = in_quiet_hours(settings, now) or now
    return Delivery.objects.filter(user_id=user_id, status=Delivery.Status.HELD).update(
        release_at=until, updated_at=now)


# --- snooze -------------------------------------------------------------------------------

def notification_snooze(*, notification: Notification, minutes=None,
                        until: datetime | None = None) -> Notification:
    """Take a notification out of the unread count and the list until ``until`` (or for
    ``minutes``, 1 to 43200); then it is back, unread (``snoozed_wake``)."""
    now = timezone.now()
    if (minutes is None) == (until is None):
        raise ApplicationError('Give either "minutes" or "until".', field="minutes")
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
                1 <= minutes <= SNOOZE_MINUTES_MAX):
            raise ApplicationError(f"Snooze for 1 to {SNOOZE_MINUTES_MAX} minutes (30 days).",
                                   field="minutes")
        until = now + timedelta(minutes=minutes)
    elif timezone.is_naive(until):
        raise ApplicationError("Give a time with its offset, e.g. 2026-12-05T09:00:00+01:00.",
                               field="until")
    elif not (now < until <= now + timedelta(minutes=SNOOZE_MINUTES_MAX)):
        raise ApplicationError("Snooze until a time in the next 30 days.", field="until")
    notification.snoozed_until, notification.updated_at = until, now
    notification.save(update_fields=["snoozed_until", "updated_at"])
    return notification


def notification_unsnooze(*, notification: Notification) -> Notification:
    """Back in the list and the unread count now, unread."""
    if notification.snoozed_until is not None:
        notification.snoozed_until, notification.read_at = None, None
        notification.updated_at = timezone.now()
        notification.save(update_fields=["snoozed_until", "read_at", "updated_at"])
    return notification


def snoozed_wake(*, now: datetime | None = None) -> int:
    """Every snooze that has ended: back in the list, unread (the beat sweep, one UPDATE on
    a partial index). Returns how many woke."""
    now = now or timezone.now()
    return Notification.objects.filter(snoozed_until__lte=now).update(
        snoozed_until=None, read_at=None, updated_at=now)


# --- mutes --------------------------------------------------------------------------------

def mute_create(*, user, event_type: str | None = None, category: str | None = None,
                workspace_id: str | None = None, until: datetime | None = None) -> Mute:
    """Mute one event type (key), category (slug) or workspace (public id, one the user is
    a member of) for the user, until ``until`` or until removed."""
    given = {name: value for name, value in (("event_type", event_type),
                                             ("category", category),
                                             ("workspace_id", workspace_id)) if value}
    if len(given) != 1:
        raise ApplicationError("Mute exactly one of: event_type, category, workspace_id.",
                               field="event_type")
    mute = Mute(user=user, until=until)
    if event_type:
        mute.event_type = _found(EventType.objects.filter(key=event_type), "event_type",
                                 f"unknown event type {event_type!r}")
    elif category:
        mute.category = _found(Category.objects.filter(slug=category), "category",
                               f"unknown category {category!r}")
    else:
        mute.workspace = _found(Workspace.objects.filter(public_id=workspace_id,
                                                         memberships__user=user),
                                "workspace_id", f"unknown workspace {workspace_id!r}")
    if until is not None and (timezone.is_naive(until) or until <= timezone.now()):
        raise ApplicationError("Give a time to come, with its offset (or null: until "
                               "removed).", field="until")
    full_clean(mute)
    mute.save()
    return mute


def mute_delete(*, mute: Mute) -> None:
    mute.delete()


def _found(queryset, field: str, message: str):
    found = queryset.first()
    if found is None:
        raise ApplicationError(message, field=field)
    return found


# --- silences -----------------------------------------------------------------------------

MATCHER_KEYS = ("event_type", "category", "workspace_id", "payload")


def silence_save(*, values: dict, created_by=None, silence: Silence | None = None) -> Silence:
    """Create a silence (or change ``silence``) from ``values``: ``matchers`` (at least one
    of event_type, category, workspace_id, payload; each known), ``starts_at`` (default
    now), ``ends_at`` (required, after the start), ``comment`` (required)."""
    silence = silence or Silence(created_by=created_by, starts_at=timezone.now())
    matchers = values.get("matchers", silence.matchers)
    silence.workspace = _check_matchers(matchers)
    silence.matchers = matchers
    if values.get("starts_at") is not None:
        silence.starts_at = values["starts_at"]
    if "ends_at" in values:
        silence.ends_at = values["ends_at"]
    if "comment" in values:
        silence.comment = values["comment"]
    if silence.ends_at is None:
        raise ApplicationError("A silence needs an end (ends_at).", field="ends_at")
    if not (silence.comment or "").strip():
        raise ApplicationError("Say why in a comment: whoever sees the silence needs it.",
                               field="comment")
    if silence.ends_at <= silence.starts_at:
        raise ApplicationError("A silence ends after it starts.", field="ends_at")
    if silence.ends_at - silence.starts_at > timedelta(days=SILENCE_MAX_DAYS):
        raise ApplicationError(f"A silence lasts at most {SILENCE_MAX_DAYS} days.",
                               field="ends_at")
    full_clean(silence)
    silence.save()
    return silence


def _check_matchers(matchers) -> Workspace | None:
    if not isinstance(matchers, dict) or not matchers:
        raise ApplicationError("Give at least one matcher: event_type, category, "
                               "workspace_id or payload.", field="matchers")
    unknown = sorted(set(matchers) - set(MATCHER_KEYS))
    if unknown:
        raise ApplicationError(f"Unknown matcher {unknown[0]!r}; use "
                               f"{', '.join(MATCHER_KEYS)}.", field="matchers")
    if "event_type" in matchers and not EventType.objects.filter(
            key=matchers["event_type"]).exists():
        raise ApplicationError(f"unknown event type {str(matchers['event_type'])[:120]!r}",
                               field="matchers")
    if "category" in matchers and not Category.objects.filter(
            slug=matchers["category"]).exists():
        raise ApplicationError(f"unknown category {str(matchers['category'])[:60]!r}",
                               field="matchers")
    payload = matchers.get("payload", {})
    if not isinstance(payload, dict) or ("payload" in matchers and not payload) or any(
            not isinstance(key, str) for key in payload):
        raise ApplicationError('payload matches values by key: {"datasource_name": "x"}.',
                               field="matchers")
    if "workspace_id" not in matchers:
        return None
    return _found(Workspace.objects.filter(public_id=matchers["workspace_id"]), "matchers",
                  f"unknown workspace {str(matchers['workspace_id'])[:60]!r}")


def silence_expire(*, silence: Silence) -> Silence:
    """End a silence now (one not started yet ends before it starts: it never applies)."""
    now = timezone.now()
    if silence.ends_at <= now:
        raise Conflict(f"Silence {silence.pk} has ended already.", code="expired")
    silence.ends_at = now
    if silence.starts_at > now:
        silence.starts_at = now
    silence.save(update_fields=["starts_at", "ends_at", "updated_at"])
    return silence


def silences_active(now: datetime | None = None):
    now = now or timezone.now()
    return Silence.objects.filter(Q(starts_at__lte=now) & Q(ends_at__gt=now))
