import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from .catalog import Priority
from .templating import validate_title_template
from .validators import validate_event_type_keys, validate_group_by, validate_single_line


class Category(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    prefix = models.SlugField(
        max_length=50, unique=True, help_text="Event type keys start with it."
    )
    position = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class EventType(models.Model):
    key = models.CharField(max_length=120, unique=True, help_text="<category prefix>.<name>")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="event_types")
    name = models.SlugField(max_length=80)
    label = models.CharField(max_length=150, validators=[validate_single_line])
    description = models.TextField(blank=True)
    title_template = models.CharField(
        max_length=300, validators=[validate_title_template],
        help_text="Django template rendered with the event payload, e.g. "
                  "'Connection lost: {{ datasource_name }}'.",
    )
    default_priority = models.CharField(max_length=10, choices=Priority.CHOICES)
    priority_override = models.CharField(
        max_length=10, choices=Priority.CHOICES, blank=True, default="",
        help_text="Leave empty to use the default priority.",
    )
    enabled = models.BooleanField(default=True, help_text="Deliver notifications for this event.")
    group_by = models.JSONField(
        default=list, blank=True, validators=[validate_group_by],
        help_text="Payload keys whose equal values make a repeat (e.g. datasource_name): a "
                  "repeat within the interval notifies nobody again. Empty: no grouping.")
    resolves = models.JSONField(
        default=list, blank=True, validators=[validate_event_type_keys],
        help_text="Event type keys this type resolves: an event of it resolves every "
                  "unresolved event of those types in its workspace with equal group_by "
                  "values (the resolved type's).")
    repeat_interval_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="Repeats within this many minutes of a group's first notification are "
                  "folded into it; the next one after that notifies again.")
    builtin = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["category__position", "key"]
        constraints = [
            models.UniqueConstraint(fields=["category", "name"], name="event_type_unique_name"),
        ]

    def __str__(self):
        return self.key

    def save(self, *args, **kwargs):
        if not self.key:
            self.key = f"{self.category.prefix}.{self.name}"
        super().save(*args, **kwargs)

    def clean(self):
        if self.category_id and self.name:
            self.key = f"{self.category.prefix}.{self.name}"

    @property
    def effective_priority(self) -> str:
        return self.priority_override or self.default_priority


def _workspace_public_id() -> str:
    return f"ws_{secrets.token_hex(6)}"


class Workspace(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_workspace_public_id)
    name = models.CharField(max_length=150, validators=[validate_single_line])
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.public_id})"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"
        VIEWER = "viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique"),
        ]

    def __str__(self):
        return f"{self.user} in {self.workspace} ({self.role})"


class Event(models.Model):
    """One emitted event: the event log, and the outbox row that routing works from."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending routing"
        ROUTED = "routed", "Routed"
        SUPPRESSED = "suppressed", "Logged only (notifications disabled)"
        SILENCED = "silenced", "Silenced (an admin's silence matched)"
        GROUPED = "grouped", "Grouped (a repeat within the interval)"
        INHIBITED = "inhibited", "Inhibited (an unresolved source event's rule matched)"
        FAILED = "failed", "Failed (routing gave up; see the error)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="events")
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    priority = models.CharField(
        max_length=10, choices=Priority.CHOICES, help_text="Effective priority when emitted."
    )
    payload = models.JSONField(default=dict, blank=True)
    recipient_ids = models.JSONField(
        null=True, blank=True, help_text="Explicit audience (user ids); empty means the default."
    )
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    routed_at = models.DateTimeField(null=True, blank=True)
    next_sweep_at = models.DateTimeField(
        null=True, blank=True,
        help_text="While pending: when the outbox sweep enqueues routing again.",
    )
    last_error = models.TextField(
        blank=True, help_text="Why routing failed, when the status is failed."
    )
    routed_channels = models.JSONField(
        default=list, blank=True, help_text="The channels routing chose (explain reads them).")
    routing_source = models.CharField(
        max_length=30, blank=True,
        help_text="What chose the channels: an event type rule, a category rule, the default.")
    silenced_by = models.BigIntegerField(
        null=True, blank=True, help_text="Silenced: the id of the silence that matched.")
    grouped_into = models.UUIDField(
        null=True, blank=True, help_text="Grouped: the first event of its group.")
    inhibited_by = models.UUIDField(
        null=True, blank=True, help_text="Inhibited: the unresolved source event.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+")
    acknowledged_by_name = models.CharField(
        max_length=254, blank=True, help_text="Who acknowledged: a username, or the address "
                                              "whose email link was used.")
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was sent again, nobody having acknowledged.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text="Resolved by hand: who.")
    resolved_by_event = models.UUIDField(
        null=True, blank=True, help_text="Resolved by an event that resolves it: which.")

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("emit_event", "Can emit events through the API"),
            # For service accounts: without it (or staff status) a caller emits only to its
            # own workspaces, to recipients who share them.
            ("emit_any_workspace", "Can emit events to any workspace, or to staff"),
        ]
        indexes = [
            models.Index(
                fields=["next_sweep_at"], name="event_sweep_idx", condition=Q(status="pending")
            ),
            # Batched routing claims the oldest pending events (notifications.services).
            models.Index(
                fields=["created_at"], name="event_pending_idx", condition=Q(status="pending")
            ),
            # The priority lane's batches claim the oldest pending critical and high events.
            models.Index(
                fields=["created_at"], name="event_pending_urgent_idx",
                condition=Q(status="pending", priority__in=["critical", "high"])
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["event_type", "workspace", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False, workspace__isnull=False),
                name="event_dedupe_in_workspace",
            ),
            models.UniqueConstraint(
                fields=["event_type", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False, workspace__isnull=True),
                name="event_dedupe_without_workspace",
            ),
        ]

    def __str__(self):
        return f"{self.event_type.key} at {self.occurred_at:%Y-%m-%d %H:%M}"


class CatalogVersion(models.Model):
    """One row whose token changes with every change to the ``EventType`` table.

    ``emit()`` caches event types in each process and reads this token in the query it makes
    anyway (the workspace lookup): a different token drops the cache. A trigger, not the
    application, changes the token (migration ``0005_catalog_version``), in the transaction
    that writes event types, so every write counts: services, the admin, a bulk
    ``update()``, raw SQL, another process. No row (a test flushed the table) means no
    caching until the next change writes one.
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    token = models.CharField(max_length=64)

    def __str__(self):
        return f"catalog version {self.token}"
