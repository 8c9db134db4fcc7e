"""The bell: a user's in-app notifications."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from events.catalog import Priority
from events.models import Event, Workspace


class Notification(models.Model):
    """What a user sees in the bell: one event, or one digest listing several."""

    class Kind(models.TextChoices):
        EVENT = "event"
        DIGEST = "digest"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    digest = models.ForeignKey(
        "Digest", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event_type_key = models.CharField(max_length=120, blank=True)
    category = models.CharField(max_length=50, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.CHOICES)
    title = models.CharField(max_length=300)
    items = models.JSONField(default=list, blank=True, help_text="A digest's events.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(
        null=True, blank=True,
        help_text="Snoozed: out of the unread count and the list until then, then unread.")
    repeat_count = models.PositiveIntegerField(
        default=0, help_text="Repeats of the event folded into this notification (grouping).")
    last_occurred_at = models.DateTimeField(
        null=True, blank=True, help_text="When the latest repeat happened.")
    updated_at = models.DateTimeField(
        default=timezone.now,
        help_text="Created, or read state last changed: the bell's ETag moves with it.")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_idx"),
            models.Index(fields=["user"], name="notification_unread_idx",
                         condition=Q(read_at__isnull=True)),
            models.Index(fields=["user", "-updated_at"], name="notification_updated_idx"),
            models.Index(fields=["snoozed_until"], name="notification_snoozed_idx",
                         condition=Q(snoozed_until__isnull=False)),
        ]
        constraints = [
            # Routing twice, or a digest sent twice, can never notify a user twice.
            models.UniqueConstraint(fields=["user", "event"], condition=Q(event__isnull=False),
                                    name="notification_once_per_event"),
            models.UniqueConstraint(fields=["user", "digest"], condition=Q(digest__isnull=False),
                                    name="notification_once_per_digest"),
        ]

    def __str__(self):
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None
