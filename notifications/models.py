import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone

from channels_app.models import Channel
from events.catalog import Priority
from events.models import Category, Event, EventType, Workspace


class Bucket(models.TextChoices):
    FIVE_MINUTES = "5m", "5 minutes"
    FIFTEEN_MINUTES = "15m", "15 minutes"
    ONE_HOUR = "1h", "1 hour"


#: Batched priorities and the digest bucket each waits in. Critical and high are never here.
BUCKET_BY_PRIORITY = {
    Priority.MEDIUM: Bucket.FIVE_MINUTES,
    Priority.LOW: Bucket.FIFTEEN_MINUTES,
    Priority.INFO: Bucket.ONE_HOUR,
}
PRIORITY_BY_BUCKET = {bucket: priority for priority, bucket in BUCKET_BY_PRIORITY.items()}

#: Default channels by effective priority, when no routing rule applies.
DEFAULT_CHANNELS = {
    Priority.CRITICAL: [Channel.IN_APP, Channel.EMAIL, Channel.WEBHOOK],
    Priority.HIGH: [Channel.IN_APP, Channel.EMAIL],
    Priority.MEDIUM: [Channel.IN_APP],
    Priority.LOW: [Channel.IN_APP],
    Priority.INFO: [Channel.IN_APP],
}


def validate_channels(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one channel.")
    unknown = [c for c in value if c not in Channel.values]
    if unknown:
        raise ValidationError(
            f"Unknown channel {unknown[0]!r}; choose from {', '.join(Channel.values)}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("A channel is listed twice.")


def validate_email_list(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("Extra email addresses must be a list.")
    for address in value:
        if not isinstance(address, str):
            raise ValidationError(f"{address!r} is not a valid email address.")
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address!r} is not a valid email address.") from None


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
        validators=[validate_channels], help_text="Any of in_app, email, webhook.",
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


class NotificationPreference(models.Model):
    """One user's choice for one category on one channel; no row means on (the default).

    Critical events are delivered whatever the choice.
    """

    #: The channels a user chooses per category (webhooks are not per user).
    CHANNELS = (Channel.IN_APP, Channel.EMAIL)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notification_preferences")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=[(c.value, c.label) for c in CHANNELS])
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "category", "channel"],
                                    name="preference_once_per_channel"),
        ]
        indexes = [
            # Routing reads the opt-outs of one category.
            models.Index(fields=["category", "channel"], name="preference_opt_out_idx",
                         condition=Q(enabled=False)),
        ]

    def __str__(self):
        state = "on" if self.enabled else "off"
        return f"{self.user_id}: {self.category_id} {self.channel} {state}"


class Digest(models.Model):
    """A batch of pending deliveries for one (channel, recipient), sent as one message.

    Created when a flush claims its items; its id is the delivery id receivers see, and
    stays the same if a crashed flush is finished by the next one.
    """

    class Status(models.TextChoices):
        CLAIMED = "claimed"
        DELIVERED = "delivered"
        FAILED = "failed"
        CANCELLED = "cancelled"  # every item's recipient left the audience before the flush

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    bucket = models.CharField(max_length=4, choices=Bucket.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    address = models.EmailField(blank=True)
    endpoint_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CLAIMED)
    item_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["bucket", "channel", "status"], name="digest_flush_idx"),
            models.Index(fields=["created_at"], name="digest_created_idx"),  # retention
        ]
        permissions = [("flush_digests", "Can flush digest buckets on demand")]

    def __str__(self):
        return f"{self.get_channel_display()} digest ({self.bucket}) of {self.item_count}"


class Delivery(models.Model):
    """One send on one channel to one recipient: an event, or (kind digest) a digest's message.

    An event's delivery is sent at once, or waits in a digest bucket until a flush claims it
    into a digest. On an external channel (email, webhook) each digest is sent as a delivery
    of kind ``digest`` whose id is the digest's id. Sending is a state machine: pending ->
    sending (one attempt) -> delivered | failed, or back to pending with ``next_attempt_at``
    after a transient error (``notifications.delivery``).
    """

    class Kind(models.TextChoices):
        EVENT = "event"
        DIGEST = "digest"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"
        CANCELLED = "cancelled"  # the recipient left the event's audience before sending
        EXPIRED = "expired"  # waited too long to be worth sending (see the README)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="deliveries", help_text="Empty for a digest.")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    address = models.EmailField(blank=True)
    endpoint_id = models.BigIntegerField(null=True, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.CHOICES)
    bucket = models.CharField(
        max_length=4, choices=Bucket.choices, blank=True, help_text="Empty: sent immediately."
    )
    digest = models.ForeignKey(
        Digest, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries",
        help_text="An event's: the digest it went out in. A digest's: the digest it sends.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a pending send is due; empty while its channel is switched off.")
    sending_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["bucket", "channel"], name="delivery_pending_idx",
                         condition=Q(status="pending") & ~Q(bucket="")),
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx",
                         condition=Q(status="pending") & (Q(bucket="") | Q(kind="digest"))),
            models.Index(fields=["sending_started_at"], name="delivery_sending_idx",
                         condition=Q(status="sending") & (Q(bucket="") | Q(kind="digest"))),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind="digest") | Q(event__isnull=False),
                                   name="delivery_event_or_digest"),
        ]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.target} ({self.status})"

    @property
    def target(self) -> str:
        if self.address:
            return self.address
        if self.endpoint_id:
            return f"endpoint {self.endpoint_id}"
        return self.user.get_username() if self.user_id else ""

    @property
    def is_sent_alone(self) -> bool:
        """Whether this row is sent by itself (immediate, or a digest) rather than in a digest."""
        return self.kind == self.Kind.DIGEST or not self.bucket


class DeliveryAttempt(models.Model):
    """One try to send a delivery: when, how long, and what the receiver answered."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered"
        TRANSIENT = "transient", "Transient error"
        PERMANENT = "permanent", "Permanent error"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True,
                               help_text="Empty while the attempt runs.")
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="SMTP reply code or HTTP status.")
    error = models.TextField(blank=True)
    response = models.TextField(blank=True, help_text="The first bytes of the answer.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_once"),
        ]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome or 'running'}"


class RoutingVersion(models.Model):
    """One row whose token changes with every change to what routing reads as configuration.

    Routing caches the routing rules, the digest switches and the active webhook endpoints'
    filters in each process (``selectors.routing_config_get``) and reads this token in the
    query that locks the events it routes: a different token drops the cache. Database
    triggers change it (migration ``0009_routing_version``) in the transaction that writes
    ``RoutingRule``, ``DigestSetting`` or a webhook endpoint's routing fields, so every
    write counts: services, the admin, a bulk ``update()``, raw SQL, another process. No
    row (a test flushed the table) means no caching until the next change writes one.
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    token = models.CharField(max_length=64)

    def __str__(self):
        return f"routing version {self.token}"
