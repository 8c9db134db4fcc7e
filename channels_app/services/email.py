"""The email channel's settings: read, change (all or nothing), test."""

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.db import transaction

from core.errors import full_clean

from .. import emails, signals
from ..errors import DeliveryError
from ..models import EmailSettings
from ..transports import smtp

EMAIL_CHANNEL = "email"

#: The fields of EmailSettings an admin or API client sets.
EMAIL_SETTINGS_FIELDS = ("host", "port", "encryption", "username", "password", "from_email",
                         "from_name", "timeout", "enabled")


def email_settings_get() -> EmailSettings:
    """The email settings record, created with its defaults (email off) the first time."""
    settings, _ = EmailSettings.objects.get_or_create(pk=EmailSettings.SINGLETON_ID)
    return settings


def email_settings_update(*, values: Mapping[str, Any]) -> EmailSettings:
    """Apply ``values`` (any of EMAIL_SETTINGS_FIELDS) and save.

    An empty or absent ``password`` keeps the stored one. Raises ``ApplicationError`` naming
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
        full_clean(settings)
        settings.save()
        if settings.enabled:
            transaction.on_commit(lambda: signals.channel_ready.send(
                sender=EmailSettings, channel=EMAIL_CHANNEL))
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
