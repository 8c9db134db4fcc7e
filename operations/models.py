"""What operating the service keeps: beat's heartbeat and the Overview's hourly rollups."""

from django.db import models


class BeatHeartbeat(models.Model):
    """One row: when beat's heartbeat task last ran (``operations.beat_heartbeat``)."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    beat_at = models.DateTimeField()

    def __str__(self):
        return f"beat heartbeat at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class HourlyRollup(models.Model):
    """One figure of one hour, for the Overview's charts (``operations.rollups``).

    Counts (events, deliveries, latency) belong to the hour their event was emitted in (a
    digest: the hour it was claimed) and are computed again while the hour settles; the
    backlogs (outbox, digest items, webhook endpoints) keep the most seen in the hour.
    """

    class Kind(models.TextChoices):
        EVENTS = "events"  # key: priority
        DELIVERIES = "deliveries"  # key: channel; outcome: delivered, failed, waiting, ...
        LATENCY = "latency"  # key: channel; histogram: counts per LATENCY_BOUNDS
        OUTBOX = "outbox"  # key: priority; value: the most events pending routing
        DIGEST_ITEMS = "digest_items"  # key: bucket; value: the most items waiting
        WEBHOOKS = "webhooks"  # key: failing or inactive; value: the most endpoints

    hour = models.DateTimeField(help_text="The hour's start (UTC).")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=30)
    outcome = models.CharField(max_length=20, blank=True)
    value = models.BigIntegerField(default=0)
    histogram = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "kind", "key", "outcome"],
                                    name="hourly_rollup_once"),
        ]

    def __str__(self):
        return f"{self.kind} {self.key} {self.outcome} at {self.hour:%Y-%m-%d %H}:00"


class Overview(HourlyRollup):
    """The admin's Overview page (``operations.admin``) and its permission: a proxy of the
    rollups it draws, with no table (nor rows to dump) of its own."""

    class Meta:
        proxy = True
        verbose_name = "overview"
        verbose_name_plural = "overview"
        default_permissions = ("view",)

    def __str__(self):
        return "Overview"
