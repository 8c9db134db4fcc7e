from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from events.models import Category, EventType, Workspace
from events.validators import validate_single_line

from .fields import EncryptedTextField
from .transports import smtp, url_guard
from .webhooks import payloads

#: The longest password or signing secret stored (characters).
SECRET_MAX_LENGTH = 1024
#: The longest PagerDuty routing key stored: PagerDuty's are 32 characters.
ROUTING_KEY_MAX_LENGTH = 64


class DigestSetting(models.Model):
    """Per channel: batch medium, low and info into digests, or send them at once.

    Critical and high are immediate whatever this says. A channel without a row batches.
    The channel is a registered one (``channels_app.services.digests`` checks it).
    """

    channel = models.CharField(max_length=30, unique=True)
    digest_enabled = models.BooleanField(
        default=True, help_text="Off: medium, low and info go out immediately on this channel."
    )

    class Meta:
        ordering = ["channel"]
        verbose_name = "digest setting"

    def __str__(self):
        state = "digests" if self.digest_enabled else "immediate"
        return f"{self.channel}: {state}"


class EmailSettings(models.Model):
    """The one SMTP configuration of the email channel (row id 1).

    Read and written through ``channels_app.services``. While ``enabled`` is false, or the
    configuration is incomplete (``missing_settings``), email deliveries wait as pending.
    Validation (``full_clean``) refuses ``enabled`` with a setting missing.
    """

    class Encryption(models.TextChoices):
        STARTTLS = smtp.STARTTLS, "STARTTLS"
        SSL = smtp.SSL, "SSL/TLS"
        NONE = smtp.NONE, "None"

    SINGLETON_ID = 1

    host = models.CharField(max_length=255, blank=True, validators=[validate_single_line],
                            help_text="SMTP server host name.")
    port = models.PositiveIntegerField(
        default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="587 for STARTTLS, 465 for SSL/TLS, 25 without encryption.")
    encryption = models.CharField(max_length=10, choices=Encryption.choices,
                                  default=Encryption.STARTTLS)
    username = models.CharField(max_length=255, blank=True, validators=[validate_single_line],
                                help_text="Leave empty for a server that needs no login.")
    password = EncryptedTextField(blank=True, max_length=SECRET_MAX_LENGTH,
                                  help_text="Stored encrypted, never shown back.")
    from_email = models.EmailField("from address", blank=True)
    from_name = models.CharField(max_length=255, blank=True, default="Datafi",
                                 validators=[validate_single_line])
    timeout = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text="Seconds a connection, a test or a send may take in all.")
    enabled = models.BooleanField(
        default=False,
        help_text="Save with this on to send email (host, port and from address are needed "
                  "then); while off, email deliveries wait as pending.")
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

    @property
    def missing_settings(self) -> tuple[str, ...]:
        """The fields email cannot be sent without that are empty (``SmtpConfig.missing``)."""
        return self.smtp_config().missing

    def clean(self):
        """Email is enabled only with a complete configuration: each missing field named."""
        if self.enabled and self.missing_settings:
            raise ValidationError({name: ValidationError(
                "Required while email is enabled.", code="required_to_enable")
                for name in self.missing_settings})


def validate_webhook_url(value: str) -> None:
    """The SSRF guard at save time (``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` lifts it)."""
    try:
        url_guard.url_check(value, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
    except url_guard.UrlRefused as exc:
        raise ValidationError(str(exc), code="refused") from None


def _validate_string_list(value, what: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(f"{what} must be a list of strings.")
    if len(set(value)) != len(value):
        raise ValidationError(f"{what}: an item is listed twice.")


#: How many finished deliveries an endpoint's success rate covers.
RECENT_OUTCOMES = 100


class WebhookEndpoint(models.Model):
    """A receiver of webhook deliveries; events routed to the webhook channel reach every
    active endpoint whose filters match (empty filters match everything)."""

    class Format(models.TextChoices):
        DATAFI = payloads.DATAFI, "Datafi JSON"
        SLACK = payloads.SLACK, "Slack incoming webhook"
        PAGERDUTY = payloads.PAGERDUTY, "PagerDuty Events API v2"

    name = models.CharField(max_length=100, validators=[validate_single_line])
    url = models.URLField(
        "URL", max_length=2000, validators=[validate_webhook_url],
        help_text="https only; private and internal addresses are refused.")
    secret = EncryptedTextField(
        blank=True, max_length=SECRET_MAX_LENGTH,
        help_text="Signs every request (X-Datafi-Signature, webhook-signature). Stored "
                  "encrypted, never shown back.")
    max_retries = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(10)],
        help_text="Retries after a failed attempt (so at most this + 1 attempts).")
    is_active = models.BooleanField(default=True)
    categories = models.JSONField(default=list, blank=True,
                                  help_text="Category slugs; empty: every category.")
    event_types = models.JSONField(default=list, blank=True,
                                   help_text="Event type keys; empty: every event type.")
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Only this workspace's events; empty: every workspace (and none).")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.DATAFI)
    routing_key = EncryptedTextField(
        blank=True, max_length=ROUTING_KEY_MAX_LENGTH,
        help_text="PagerDuty integration key (PagerDuty format only). Stored encrypted, never "
                  "shown back.")
    consecutive_failures = models.PositiveIntegerField(
        default=0, editable=False, help_text="Failed deliveries since the last delivered one.")
    last_delivery_status = models.CharField(max_length=10, blank=True, editable=False)
    last_delivery_at = models.DateTimeField(null=True, blank=True, editable=False)
    recent_outcomes = models.CharField(
        max_length=RECENT_OUTCOMES, blank=True, editable=False,
        help_text="The last finished deliveries, oldest first: D delivered, F failed.")
    deactivated_reason = models.CharField(max_length=300, blank=True, editable=False)
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "webhook endpoint"

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        for name, model, lookup in (("categories", Category, "slug"),
                                    ("event_types", EventType, "key")):
            value = getattr(self, name)
            try:
                _validate_string_list(value, name)
            except ValidationError as exc:
                errors[name] = exc.messages
                continue
            known = set(model.objects.filter(**{f"{lookup}__in": value})
                        .values_list(lookup, flat=True))
            unknown = [item for item in value if item not in known]
            if unknown:
                errors[name] = [f"Unknown {name.replace('_', ' ')[:-1]} {unknown[0]!r}."]
        if self.format == self.Format.PAGERDUTY and not self.routing_key:
            errors["routing_key"] = ["PagerDuty needs the integration's routing key."]
        if errors:
            raise ValidationError(errors)

    @property
    def secret_set(self) -> bool:
        return bool(self.secret)

    @property
    def recent_success_rate(self) -> float | None:
        """Delivered / finished over the last ``RECENT_OUTCOMES`` finished deliveries."""
        if not self.recent_outcomes:
            return None
        return self.recent_outcomes.count("D") / len(self.recent_outcomes)
