"""Routing configuration: rules per category or event type, and its version token."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q

from channels_app.backends import (
    ChannelListError,
    channel_names,
    check_channel_list,
    registered_backends,
)
from events.models import Category, EventType


def validate_channels(value) -> None:
    """A model validator around ``check_channel_list`` (the one check of a channel list)."""
    try:
        check_channel_list(value)
    except ChannelListError as exc:
        raise ValidationError(exc.message) from None


# As the OpenAPI schema says it (core.openapi), with the channels installed then.
validate_channels.openapi = lambda: {"type": "array", "minItems": 1, "uniqueItems": True,
                                     "items": {"type": "string", "enum": channel_names()}}


def validate_email_list(value) -> None:
    """A list of email addresses (a rule's distribution lists, an escalation's)."""
    if not isinstance(value, list):
        raise ValidationError("Extra email addresses must be a list.")
    for address in value:
        if not isinstance(address, str):
            raise ValidationError(f"{address!r} is not a valid email address.")
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address!r} is not a valid email address.") from None


validate_email_list.openapi = {"type": "array",
                               "items": {"type": "string", "format": "email"}}


ESCALATION_KEYS = ("after_minutes", "channels", "emails")
ESCALATION_MAX_MINUTES = 7 * 24 * 60


def validate_escalation(value) -> None:
    """``None``, or ``{"after_minutes": 1..10080, "channels": [external channels], "emails":
    [addresses]}``: the one check of an escalation (rules, routing files, REST)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ValidationError('Give {"after_minutes": N, "channels": [...], "emails": [...]}.')
    unknown = sorted(set(value) - set(ESCALATION_KEYS))
    if unknown:
        raise ValidationError(f"Unknown escalation setting {unknown[0]!r}; use "
                              f"{', '.join(ESCALATION_KEYS)}.")
    minutes = value.get("after_minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
            1 <= minutes <= ESCALATION_MAX_MINUTES):
        raise ValidationError(f"after_minutes: a whole number from 1 to {ESCALATION_MAX_MINUTES}.")
    try:
        check_channel_list(value.get("channels"), names=[
            b.name for b in registered_backends() if b.external])
    except ChannelListError as exc:
        raise ValidationError(f"channels: {exc.message}") from None
    validate_email_list(value.get("emails", []))


def normalize_escalation(value):
    """A valid escalation in one form (``emails`` always there), so equal ones compare
    equal; None stays None."""
    if value is None:
        return None
    return {"after_minutes": value["after_minutes"], "channels": list(value["channels"]),
            "emails": list(value.get("emails") or [])}


class RoutingRule(models.Model):
    """Channels for one category or one event type; the most specific rule wins."""

    category = models.OneToOneField(
        Category, null=True, blank=True, on_delete=models.CASCADE, related_name="routing_rule",
        help_text="Every event type of this category (unless it has a rule of its own)...",
    )
    event_type = models.OneToOneField(
        EventType, null=True, blank=True, on_delete=models.CASCADE, related_name="routing_rule",
        help_text="...or one event type. Choose exactly one of the two.",
    )
    channels = models.JSONField(
        validators=[validate_channels], help_text="Any of the installed channels.",
        error_messages={"blank": "Choose at least one channel.",
                        "null": "Choose at least one channel."},
    )
    extra_emails = models.JSONField(
        default=list, blank=True, validators=[validate_email_list],
        help_text="Distribution-list addresses that also receive this event's email.",
    )
    escalate = models.JSONField(
        null=True, blank=True, validators=[validate_escalation],
        help_text='Critical and high events nobody acknowledges in time go out again: '
                  '{"after_minutes": 15, "channels": ["email"], "emails": [...]}.')
    notify_resolved = models.BooleanField(
        default=False, help_text="When such an event is resolved, the emails it sent get a "
                                 "short \"Resolved:\" follow-up.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category__position", "event_type__key"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(category__isnull=True) ^ Q(event_type__isnull=True)),
                name="routing_rule_one_target",
                violation_error_message=(
                    "Choose exactly one target: a category or an event type."
                ),
            ),
        ]

    def __str__(self):
        target = self.event_type.key if self.event_type_id else f"category {self.category.slug}"
        return f"{target} -> {', '.join(self.channels)}"


class RoutingVersion(models.Model):
    """One row whose token changes with every change to what routing reads as configuration.

    Routing caches the routing rules, the digest switches and each channel's own
    configuration (the active webhook endpoints' filters) in each process
    (``routing.rules.routing_config_get``) and reads this token in the query that locks the
    events it routes: a different token drops the cache. Database triggers change it
    (migrations ``0009_routing_version``, ``0015``) in the transaction that writes
    ``RoutingRule``, ``DigestSetting``, a webhook endpoint's routing fields, a ``Silence``
    or an ``InhibitRule`` (which policies read once per token), so every write counts:
    services, the admin, a bulk ``update()``, raw SQL, another process. No row (a test
    flushed the table) means no caching until the next change writes one.
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    token = models.CharField(max_length=64)

    def __str__(self):
        return f"routing version {self.token}"
