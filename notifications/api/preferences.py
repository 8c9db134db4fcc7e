"""The signed-in user's preferences (``/api/preferences/``): channels per category, time
zone and quiet hours."""

from django.db import DatabaseError
from rest_framework import serializers

from channels_app.backends import user_choosable_backends
from events.api.serializers import StrictFieldsMixin
from events.models import Category

from ..models.attention import time_zones


class ChannelChoicesField(serializers.DictField):
    """``{"in_app": bool, "email": bool}``; which channels exist is checked by the service."""

    child = serializers.BooleanField()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for channel, value in data.items():
                if not isinstance(value, bool):
                    raise serializers.ValidationError(
                        f"{channel!r} must be true or false, not {value!r}")
        return super().to_internal_value(data)


class CategoryChoicesField(serializers.DictField):
    """``{category slug: {channel: bool}}``; the schema lists the catalog's categories and
    the channels users choose from (the service refuses any other)."""

    @staticmethod
    def openapi() -> dict:
        channels = {"type": "object", "additionalProperties": False, "properties": {
            backend.name: {"type": "boolean"} for backend in user_choosable_backends()}}
        try:
            slugs = sorted(Category.objects.values_list("slug", flat=True))
        except DatabaseError:  # not yet migrated (see events.api.serializers.listed)
            return {}
        return {"properties": dict.fromkeys(slugs, channels), "additionalProperties": False}


class ChannelSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()


class QuietHoursSerializer(StrictFieldsMixin, serializers.Serializer):
    start = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text="HH:MM, local time.",
                                   error_messages={"invalid": "Give a time of day as HH:MM."})
    end = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text="HH:MM, local time.",
                                 error_messages={"invalid": "Give a time of day as HH:MM."})


class TimeZoneField(serializers.CharField):
    """An IANA time zone name; the schema lists the ones this machine knows."""

    @staticmethod
    def openapi() -> dict:
        return {"enum": time_zones()}


class PreferencesSerializer(StrictFieldsMixin, serializers.Serializer):
    """PUT replaces the categories given (a channel left out of one goes back to on) and sets
    the time zone and quiet hours when given; what is left out is kept."""

    openapi = {"minProperties": 1}

    categories = CategoryChoicesField(child=ChannelChoicesField(), required=False)
    timezone = TimeZoneField(
        required=False, max_length=64, help_text="IANA name, e.g. Europe/Paris (default UTC).")
    quiet_hours = QuietHoursSerializer(
        required=False, allow_null=True,
        help_text="null, or start and end in your time zone (may cross midnight): emails "
                  "wait meanwhile and go out as one digest after (critical at once).")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                {"categories": ["Give categories, timezone and/or quiet_hours."]})
        return attrs
    channels = ChannelSerializer(
        many=True, read_only=True,
        help_text="The channels users choose from, in the order pages show them.")
    critical_always_delivered = serializers.BooleanField(
        read_only=True, default=True,
        help_text="Critical events are delivered whatever the preferences say.")
