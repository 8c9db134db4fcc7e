"""Users' channel choices per category."""

from django.db import transaction

from channels_app.backends import user_choosable_backends
from core.errors import ApplicationError
from events.models import Category

from ..models import NotificationPreference
from .attention import notification_settings_set


def preferences_set(*, user, categories: dict[str, dict[str, bool]]) -> None:
    """Replace ``user``'s choices for each category given (others are kept).

    ``categories`` maps a category slug to ``{channel: on}``; a channel left out of a given
    category goes back to the default (on). Raises ``ApplicationError`` (field
    ``categories``) naming an unknown category or channel; nothing is written then.
    Critical events are delivered whatever is chosen here.
    """
    known = dict(Category.objects.values_list("slug", "pk"))
    chooseable = [backend.name for backend in user_choosable_backends()]
    for slug, channels in categories.items():
        if slug not in known:
            raise ApplicationError(
                f"unknown category {slug!r}; choose from {', '.join(sorted(known))}",
                field="categories")
        for channel in channels:
            if channel not in chooseable:
                choices = ", ".join(chooseable)
                raise ApplicationError(
                    f"unknown channel {channel!r} in {slug!r}; choose from {choices}",
                    field="categories")
    with transaction.atomic():
        NotificationPreference.objects.filter(
            user=user, category_id__in=[known[slug] for slug in categories]).delete()
        NotificationPreference.objects.bulk_create(
            NotificationPreference(user=user, category_id=known[slug], channel=channel,
                                   enabled=False)
            for slug, channels in categories.items()
            for channel, enabled in channels.items() if not enabled
        )


def preferences_update(*, user, categories: dict | None = None, timezone_name: str | None = None,
                       quiet_hours=...) -> None:
    """What ``PUT /api/preferences/`` changes, all or nothing: the categories given
    (``preferences_set``), the time zone and the quiet hours
    (``attention.notification_settings_set``); what is left out is kept."""
    with transaction.atomic():
        if categories is not None:
            preferences_set(user=user, categories=categories)
        if timezone_name is not None or quiet_hours is not ...:
            notification_settings_set(user=user, timezone_name=timezone_name,
                                      quiet_hours=quiet_hours)
