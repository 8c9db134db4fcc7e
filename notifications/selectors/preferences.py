"""Reads of users' channel choices."""

from channels_app.backends import user_choosable_backends
from events.models import Category

from ..models import NotificationPreference, UserNotificationSettings


def preferences_get(*, user) -> dict[str, dict[str, bool]]:
    """Category slug -> channel -> on, for every category and every channel users choose
    (``ChannelBackend.user_choosable``, in registration order).

    What ``user`` has not chosen is on (the default). Two queries.
    """
    channels = [backend.name for backend in user_choosable_backends()]
    stored = {
        (slug, channel): enabled
        for slug, channel, enabled in NotificationPreference.objects.filter(user=user)
        .values_list("category__slug", "channel", "enabled")
    }
    return {
        slug: {channel: stored.get((slug, channel), True)
               for channel in channels}
        for slug in Category.objects.order_by("position", "slug").values_list("slug", flat=True)
    }


def preference_channels() -> list[dict]:
    """The channels users choose per category, ``{"name", "label"}``, in the order pages
    show them."""
    return [{"name": backend.name, "label": backend.label}
            for backend in user_choosable_backends()]


def quiet_hours_get(*, user) -> dict:
    """``{"timezone": ..., "quiet_hours": None | {"start": "HH:MM", "end": "HH:MM"}}``."""
    stored = UserNotificationSettings.objects.filter(user=user).first()
    if stored is None:
        return {"timezone": "UTC", "quiet_hours": None}
    quiet = None
    if stored.quiet_start is not None:
        quiet = {"start": f"{stored.quiet_start:%H:%M}", "end": f"{stored.quiet_end:%H:%M}"}
    return {"timezone": stored.timezone, "quiet_hours": quiet}
