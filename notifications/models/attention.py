"""Attention controls: a user's quiet hours and mutes, an admin's silences, and the groups
that fold repeats of an event into its first notification."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from events.models import Category, Event, EventType, Workspace


def validate_timezone(value: str) -> None:
    """An IANA time zone name this machine knows (``tzdata`` ships them all)."""
    if not isinstance(value, str) or value not in _zones():
        raise ValidationError(f"{str(value)[:60]!r} is not a time zone name, e.g. "
                              "'Europe/Paris' or 'America/New_York'.")


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = zoneinfo.available_timezones() | {"UTC"}
    return _ZONES


_ZONES: set[str] | None = None


def time_zones() -> list[str]:
    """The names ``validate_timezone`` takes, sorted (the API schema lists them)."""
    return sorted(_zones())


class UserNotificationSettings(models.Model):
    """A user's time zone and quiet hours (``/api/preferences/``); no row: UTC, none."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="notification_settings")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    quiet_start = models.TimeField(null=True, blank=True,
                                   help_text="Quiet hours start (local time); empty: none.")
    quiet_end = models.TimeField(null=True, blank=True,
                                 help_text="Quiet hours end (local time); may cross midnight.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="quiet_hours_whole"),
        ]

    def __str__(self):
        if self.quiet_start is None:
            return f"{self.user_id}: {self.timezone}, no quiet hours"
        return f"{self.user_id}: quiet {self.quiet_start:%H:%M}-{self.quiet_end:%H:%M} " \
               f"{self.timezone}"


class Mute(models.Model):
    """A user's own mute of an event type, a category or a workspace, until a time or
    until removed. Non-critical events it matches reach that user on no channel."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="mutes")
    event_type = models.ForeignKey(EventType, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="+")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="+")
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+")
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: until removed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "until"], name="mute_user_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(event_type__isnull=False, category__isnull=True,
                             workspace__isnull=True)
                           | Q(event_type__isnull=True, category__isnull=False,
                               workspace__isnull=True)
                           | Q(event_type__isnull=True, category__isnull=True,
                               workspace__isnull=False)),
                name="mute_one_target",
                violation_error_message="Mute exactly one of: an event type, a category or "
                                        "a workspace."),
        ]

    def __str__(self):
        return f"{self.user_id} mutes {self.target_label}"

    @property
    def target_label(self) -> str:
        if self.event_type_id:
            return f"event type {self.event_type.key}"
        if self.category_id:
            return f"category {self.category.slug}"
        return f"workspace {self.workspace.public_id}"


class Silence(models.Model):
    """An admin's silence (Alertmanager's idea): events it matches while it is active are kept
    with status ``silenced`` and delivered on no channel, whatever their priority.

    ``matchers``: any of ``event_type`` (a key), ``category`` (a slug), ``workspace_id`` (a
    public id) and ``payload`` (``{key: value}``, each equal); all given must match.
    """

    matchers = models.JSONField()
    #: ``matchers["workspace_id"]``'s workspace, kept by the service so matching compares ids.
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+", editable=False)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="silence_active_idx")]
        permissions = [("expire_silence", "Can expire a silence now")]

    def __str__(self):
        return f"silence {self.pk}: {self.comment[:60]}"

    def matches(self, event) -> bool:
        """Whether ``event`` (event type and category loaded) is one this silence catches."""
        matchers = self.matchers or {}
        if "event_type" in matchers and event.event_type.key != matchers["event_type"]:
            return False
        if "category" in matchers and event.event_type.category.slug != matchers["category"]:
            return False
        if "workspace_id" in matchers and event.workspace_id != self.workspace_id:
            return False
        payload = event.payload if isinstance(event.payload, dict) else {}
        return all(payload.get(key) == value
                   for key, value in (matchers.get("payload") or {}).items())


class NotificationGroup(models.Model):
    """Repeats of one event type in one workspace with equal ``group_by`` values, folded into
    the group's first event (its notifications count them) until the interval has passed."""

    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+")
    key = models.CharField(max_length=64, help_text="A hash of the group_by values.")
    first_event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    repeats = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["event_type", "key", "-first_at"],
                                name="notification_group_idx")]

    def __str__(self):
        return f"group of {self.first_event_id}: {self.repeats} repeats"
