from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .fields import EncryptedTextField
from .transports import smtp


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


class EmailSettings(models.Model):
    """The one SMTP configuration of the email channel (row id 1).

    Read and written through ``channels_app.services``. While ``enabled`` is false, email
    deliveries wait as pending.
    """

    class Encryption(models.TextChoices):
        STARTTLS = smtp.STARTTLS, "STARTTLS"
        SSL = smtp.SSL, "SSL/TLS"
        NONE = smtp.NONE, "None"

    SINGLETON_ID = 1

    host = models.CharField(max_length=255, blank=True, help_text="SMTP server host name.")
    port = models.PositiveIntegerField(
        default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="587 for STARTTLS, 465 for SSL/TLS, 25 without encryption.")
    encryption = models.CharField(max_length=10, choices=Encryption.choices,
                                  default=Encryption.STARTTLS)
    username = models.CharField(max_length=255, blank=True,
                                help_text="Leave empty for a server that needs no login.")
    password = EncryptedTextField(blank=True, help_text="Stored encrypted, never shown back.")
    from_email = models.EmailField("from address", blank=True)
    from_name = models.CharField(max_length=255, blank=True, default="Datafi")
    timeout = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text="Seconds a connection, a test or a send may take in all.")
    enabled = models.BooleanField(
        default=False,
        help_text="Save with this on to send email; while off, email deliveries wait as pending.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "email settings"
        verbose_name_plural = "email settings"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="email_settings_singleton"),
        ]

    def __str__(self):
        return "Email settings"

    def smtp_config(self) -> smtp.SmtpConfig:
        return smtp.SmtpConfig(
            host=self.host, port=self.port, encryption=self.encryption,
            username=self.username, password=self.password, from_email=self.from_email,
            from_name=self.from_name, timeout=self.timeout,
        )
