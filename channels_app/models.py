from django.db import models


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DigestSetting(models.Model):
    """Per channel: batch medium, low and info into digests, or send them at once.

    Critical and high are immediate whatever this says. A channel without a row batches.
    """

    channel = models.CharField(max_length=10, choices=Channel.choices, unique=True)
    digest_enabled = models.BooleanField(
        default=True, help_text="Off: medium, low and info go out immediately on this channel."
    )

    class Meta:
        ordering = ["channel"]
        verbose_name = "digest setting"

    def __str__(self):
        state = "digests" if self.digest_enabled else "immediate"
        return f"{self.get_channel_display()}: {state}"
