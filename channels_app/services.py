"""Everything in channels_app that writes or sends."""

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from events.catalog import Priority
from events.exceptions import UnknownEventType
from events.services import event_emit

from . import crypto, emails, signals
from .errors import DeliveryError
from .fields import EncryptedTextField
from .models import EmailSettings, WebhookEndpoint
from .transports import smtp
from .webhooks import payloads
from .webhooks.sending import WebhookMessage, post

logger = logging.getLogger(__name__)

#: The fields of EmailSettings an admin or API client sets.
EMAIL_SETTINGS_FIELDS = ("host", "port", "encryption", "username", "password", "from_email",
                         "from_name", "timeout", "enabled")


def email_settings_get() -> EmailSettings:
    """The email settings record, created with its defaults (email off) the first time."""
    settings, _ = EmailSettings.objects.get_or_create(pk=EmailSettings.SINGLETON_ID)
    return settings


def email_settings_update(*, values: Mapping[str, Any]) -> EmailSettings:
    """Apply ``values`` (any of EMAIL_SETTINGS_FIELDS) and save.

    An empty or absent ``password`` keeps the stored one. Raises ValidationError naming
    each field it refuses, saving nothing: an invalid value, or ``enabled`` with a host, a
    port or a from address missing (``EmailSettings.clean``).
    """
    with transaction.atomic():
        email_settings_get()  # the row exists before it is locked
        settings = EmailSettings.objects.select_for_update().get(pk=EmailSettings.SINGLETON_ID)
        for name, value in values.items():
            if name not in EMAIL_SETTINGS_FIELDS or (name == "password" and not value):
                continue
            setattr(settings, name, value)
        settings.full_clean()
        settings.save()
        if settings.enabled:
            transaction.on_commit(lambda: signals.email_enabled.send(sender=EmailSettings))
    return settings


def email_smtp_config(*, overrides: Mapping[str, Any] | None = None) -> smtp.SmtpConfig:
    """The stored SMTP settings, with ``overrides`` (e.g. a form not yet saved) on top.

    An empty or absent password in ``overrides`` means the stored one.
    """
    config = email_settings_get().smtp_config()
    changes = {name: value for name, value in (overrides or {}).items()
               if name in EMAIL_SETTINGS_FIELDS and name != "enabled"
               and not (name == "password" and not value)}
    return replace(config, **changes)


def email_test_connection(*, overrides: Mapping[str, Any] | None = None) -> smtp.Result:
    """Connect, negotiate encryption and authenticate with the stored (or given) settings."""
    return smtp.test_connection(email_smtp_config(overrides=overrides))


def email_send_test(*, to: str, overrides: Mapping[str, Any] | None = None) -> smtp.Result:
    """Send a short test message to ``to`` with the stored (or given) settings, now."""
    config = email_smtp_config(overrides=overrides)
    if not config.is_configured:
        return smtp.Result(ok=False, error=smtp.NOT_CONFIGURED,
                           detail="Email is not configured: set a host, a port and a from "
                                  "address.")
    try:
        message = emails.build_test_email(
            to=to, from_email=config.from_email, from_name=config.from_name,
            message_id=emails.make_message_id(uuid.uuid4(), config.from_email),
            server=f"{config.host}:{config.port} ({config.encryption})")
        smtp.send_message(config, message)
    except ValueError as exc:
        return smtp.Result(ok=False, error=smtp.REJECTED, detail=str(exc))
    except DeliveryError as error:
        return smtp.Result.from_error(error)
    return smtp.Result(ok=True)


def encrypted_secrets_rotate() -> dict[str, int]:
    """Re-encrypt every non-empty value of every EncryptedTextField with the first key.

    All or nothing: a value no configured key opens raises DecryptionError and nothing is
    written. Returns the number of values per ``app_label.Model.field``.
    """
    counts = {}
    with transaction.atomic():
        for model, field in _encrypted_fields():
            table, column = (connection.ops.quote_name(model._meta.db_table),
                             connection.ops.quote_name(field.column))
            pk_column = connection.ops.quote_name(model._meta.pk.column)
            label = f"{model._meta.label}.{field.name}"
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk_column}, {column} FROM {table} "
                               f"WHERE {column} IS NOT NULL AND {column} <> ''")
                rows = cursor.fetchall()
                for pk, token in rows:
                    cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s",
                                   [crypto.rotate(token, what=f"{label} of row {pk}"), pk])
            counts[label] = len(rows)
    return counts


def _encrypted_fields():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


# --- webhook endpoints ----------------------------------------------------------------------

#: The fields of WebhookEndpoint an admin or API client sets.
WEBHOOK_ENDPOINT_FIELDS = ("name", "url", "secret", "max_retries", "is_active", "categories",
                           "event_types", "workspace", "format", "routing_key")
#: Write-only secrets: absent or "" keeps the stored value, None removes it.
WEBHOOK_SECRET_FIELDS = ("secret", "routing_key")
ENDPOINT_DISABLED_EVENT = "system.webhook_endpoint_disabled"


def webhook_endpoint_save(*, values: Mapping[str, Any],
                          endpoint: WebhookEndpoint | None = None) -> WebhookEndpoint:
    """Create an endpoint, or change ``endpoint``, from ``values`` (WEBHOOK_ENDPOINT_FIELDS).

    ``secret`` and ``routing_key``: absent or "" keep the stored value, None removes it.
    Switching an inactive endpoint on clears its failure run and the reason it was
    deactivated. Raises ValidationError naming the field (e.g. a URL the SSRF guard
    refuses), saving nothing.
    """
    endpoint = endpoint if endpoint is not None else WebhookEndpoint()
    was_active = endpoint.is_active if endpoint.pk else False
    for name, value in values.items():
        if name not in WEBHOOK_ENDPOINT_FIELDS:
            continue
        if name in WEBHOOK_SECRET_FIELDS:
            if value == "":
                continue
            value = value or ""  # None removes it
        setattr(endpoint, name, value)
    if endpoint.is_active and not was_active:
        endpoint.consecutive_failures = 0
        endpoint.deactivated_reason = ""
        endpoint.deactivated_at = None
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint; its deliveries stay in the log (a pending one then fails)."""
    endpoint.delete()


@dataclass(frozen=True)
class WebhookTestResult:
    """What "Send test event" answers."""

    ok: bool
    status_code: int | None
    error: str
    duration_ms: int
    response: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "status_code": self.status_code, "error": self.error,
                "duration_ms": self.duration_ms}


def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookTestResult:
    """Send a signed sample event to ``endpoint`` now (active or not) and say how it went.

    The sample is a ``webhook.test`` event in the endpoint's format; it is not recorded as
    a delivery.
    """
    now = timezone.now()
    sample = SimpleNamespace(
        pk=uuid.uuid4(), priority=Priority.INFO, occurred_at=now,
        event_type=SimpleNamespace(key="webhook.test", label="Test event",
                                   category=SimpleNamespace(slug="system")),
        workspace_id=endpoint.workspace_id, workspace=endpoint.workspace,
        payload={"message": "A test event from Datafi: this endpoint is reachable.",
                 "endpoint": endpoint.name},
    )
    body = payloads.build_payload(format=endpoint.format, event=sample,
                                  title=f"Test event for {endpoint.name}",
                                  routing_key=endpoint.routing_key)
    message = WebhookMessage(endpoint_id=endpoint.pk, url=endpoint.url,
                             event_type="webhook.test", delivery_id=str(uuid.uuid4()),
                             body=payloads.encode(body), secret=endpoint.secret)
    started = time.monotonic()
    try:
        response = post(message)
    except DeliveryError as error:
        return WebhookTestResult(ok=False, status_code=error.code, error=error.detail,
                                 duration_ms=round((time.monotonic() - started) * 1000))
    return WebhookTestResult(ok=True, status_code=response.status_code, error="",
                             duration_ms=response.duration_ms, response=response.text)


def webhook_endpoint_record_outcome(*, endpoint_id: int, delivered: bool,
                                    status_code: int | None, error: str) -> None:
    """Keep an endpoint's run of failed deliveries; deactivate it when it must stop.

    A delivered delivery ends the run. A failed one lengthens it; 410 Gone, or a run of
    ``WEBHOOK_DISABLE_AFTER_FAILURES``, deactivates the endpoint and emits
    ``system.webhook_endpoint_disabled`` (high, to staff). Must be called inside the
    transaction that records the delivery's outcome.
    """
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
    if delivered:
        endpoints.exclude(consecutive_failures=0).update(consecutive_failures=0)
        return
    endpoint = endpoints.select_for_update().first()
    if endpoint is None or not endpoint.is_active:
        return
    endpoint.consecutive_failures += 1
    fields = ["consecutive_failures", "updated_at"]
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    reason = ""
    if status_code == 410:
        reason = "The receiver answered 410 Gone."
    elif limit and endpoint.consecutive_failures >= limit:
        reason = f"{endpoint.consecutive_failures} deliveries in a row failed."
    if reason:
        endpoint.is_active = False
        endpoint.deactivated_reason = reason
        endpoint.deactivated_at = timezone.now()
        fields += ["is_active", "deactivated_reason", "deactivated_at"]
    endpoint.save(update_fields=fields)
    if reason:
        logger.warning("webhook endpoint %s deactivated: %s", endpoint.pk, reason)
        try:
            event_emit(ENDPOINT_DISABLED_EVENT, payload={
                "endpoint_id": endpoint.pk, "endpoint_name": endpoint.name,
                "host": urlsplit(endpoint.url).hostname or "", "reason": reason,
                "last_error": error[:500], "consecutive_failures": endpoint.consecutive_failures,
            })
        except UnknownEventType:
            logger.error("%s is not in the catalog: run manage.py sync_event_catalog",
                         ENDPOINT_DISABLED_EVENT)
