"""Routing configuration: rules per category or event type, and its version token."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q

from channels_app.backends import ChannelListError, channel_names, check_channel_list
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
    (migration ``0009_routing_version``) in the transaction that writes ``RoutingRule``,
    ``DigestSetting`` or a webhook endpoint's routing fields, so every write counts:
    services, the admin, a bulk ``update()``, raw SQL, another process. No row (a test
    flushed the table) means no caching until the next change writes one.
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    token = models.CharField(max_length=64)

    def __str__(self):
        return f"routing version {self.token}"
