"""Deliveries (one send on one channel to one target), their attempts, and digests."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from events.catalog import Priority
from events.models import Event


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

#: A channel's name (``ChannelBackend.name``); checked against the registry, not frozen
#: into the database's choices, so an app can add a channel without a migration here.
CHANNEL_MAX_LENGTH = 30
#: A target as a channel backend writes it (an address, an endpoint id, ...).
TARGET_MAX_LENGTH = 500


class Digest(models.Model):
    """A batch of pending deliveries for one (channel, target), sent as one message.

    Created when a flush claims its items; its id is the delivery id receivers see, and
    stays the same if a crashed flush is finished by the next one.
    """

    class Status(models.TextChoices):
        CLAIMED = "claimed"
        DELIVERED = "delivered"
        FAILED = "failed"
        CANCELLED = "cancelled"  # every item's recipient left the audience before the flush

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=CHANNEL_MAX_LENGTH)
    bucket = models.CharField(
        max_length=4, choices=Bucket.choices, blank=True,
        help_text="Empty: deliveries held by quiet hours, released together.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=TARGET_MAX_LENGTH, blank=True)
    target_data = models.JSONField(null=True, blank=True)
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
        return f"{self.channel} digest ({self.bucket}) of {self.item_count}"


class Delivery(models.Model):
    """One send on one channel to one target: an event, or (kind digest) a digest's message.

    An event's delivery is sent at once, or waits in a digest bucket until a flush claims it
    into a digest. On an external channel (email, webhook) each digest is sent as a delivery
    of kind ``digest`` whose id is the digest's id. Sending is a state machine: pending ->
    sending (one attempt) -> delivered | failed, or back to pending with ``next_attempt_at``
    after a transient error (``notifications.deliveries``). A delivery policy may hold one
    (``held`` until ``release_at``) or drop it (``skipped``, with its ``decision`` and
    ``reason``): the log says what was not sent, and why.

    ``target`` and ``target_data`` are the channel backend's: what it needs to address the
    receiver (an address, an endpoint's id, ...). ``user`` is the audience member it is
    for; empty for a distribution list or an endpoint.
    """

    class Kind(models.TextChoices):
        EVENT = "event"
        DIGEST = "digest"

    class Purpose(models.TextChoices):
        NOTIFY = "notify"  # the event itself
        ESCALATION = "escalation"  # sent again, nobody having acknowledged it ("Escalated:")
        RESOLUTION = "resolution"  # it is resolved ("Resolved:", a PagerDuty resolve)

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"
        CANCELLED = "cancelled"  # the recipient left the event's audience before sending
        EXPIRED = "expired"  # waited too long to be worth sending (see the README)
        HELD = "held"  # a policy holds it until release_at
        SKIPPED = "skipped"  # a policy decided it is not sent (see decision and reason)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.NOTIFY)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="deliveries", help_text="Empty for a digest.")
    channel = models.CharField(max_length=CHANNEL_MAX_LENGTH)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=TARGET_MAX_LENGTH, blank=True)
    target_data = models.JSONField(null=True, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.CHOICES)
    bucket = models.CharField(
        max_length=4, choices=Bucket.choices, blank=True, help_text="Empty: sent immediately."
    )
    digest = models.ForeignKey(
        Digest, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries",
        help_text="An event's: the digest it went out in. A digest's: the digest it sends.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decision = models.CharField(
        max_length=20, blank=True,
        help_text="Held or skipped: the policy's decision (e.g. preference_off, muted).")
    reason = models.CharField(max_length=300, blank=True,
                              help_text="Held or skipped: why, in words.")
    release_at = models.DateTimeField(null=True, blank=True,
                                      help_text="Held: when it goes out.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a pending send is due; empty while its channel is not ready.")
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
            models.Index(fields=["channel", "target"], name="delivery_target_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind="digest") | Q(event__isnull=False),
                                   name="delivery_event_or_digest"),
        ]

    def __str__(self):
        return f"{self.channel} to {self.target} ({self.status})"

    @property
    def is_sent_alone(self) -> bool:
        """Whether this row is sent by itself (immediate, or a digest) rather than in a digest."""
        return self.kind == self.Kind.DIGEST or not self.bucket


#: The rows the pipeline sends by themselves: immediate deliveries and digests (an event
#: waiting in a bucket is sent inside its digest).
SENT_ALONE = Q(kind=Delivery.Kind.DIGEST) | Q(bucket="")


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
