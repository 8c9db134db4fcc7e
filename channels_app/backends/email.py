"""The email channel: one message per distinct address, to members and distribution lists.

Messages are built by ``channels_app.emails`` with the sender from the email settings
(``channels_app.services.email``) and sent over SMTP (``channels_app.transports.smtp``).
Until the settings are enabled and complete, email deliveries wait as pending.

A delivery's target is the address, lower-cased; a member's own address keeps the member
(their preferences and audience checks apply to that copy).
"""

import threading
import time
from email.message import EmailMessage

from django.conf import settings

from events.ack_links import acknowledge_url
from events.catalog import Priority

from .. import email_batch, emails
from ..models import EmailSettings
from ..services.email import EMAIL_CHANNEL, email_settings_get, email_smtp_config
from ..transports import smtp, smtp_pool
from .base import RESPONSE_KEEP_CHARS, ChannelBackend, Recipient, SendResult

#: The app's page where a signed-in user chooses what reaches them (the web app's URL).
PREFERENCES_PATH = "/preferences/"
#: How long a process keeps the messages it prepared for an event's many recipients.
PREPARED_SECONDS = 30


def preferences_url(recipient: Recipient) -> str | None:
    """Where a member manages their email (``List-Unsubscribe``); None for a list address."""
    if recipient.user_id is None:
        return None
    return settings.DATAFI_APP_URL.rstrip("/") + PREFERENCES_PATH


class EmailBackend(ChannelBackend):
    name = EMAIL_CHANNEL
    label = "Email"
    user_choosable = True
    interrupts = True
    user_fields = ("email",)
    queue = "deliveries"
    batched_queue = "digests"

    def __init__(self):
        self._batch = threading.local()

    @property
    def max_attempts(self) -> int:
        return settings.DATAFI_EMAIL_MAX_ATTEMPTS

    def batch_begin(self) -> None:
        """Read the settings once for the batch, its configuration check included."""
        stored = email_settings_get()
        self._batch.enabled, self._batch.config = stored.enabled, stored.smtp_config()

    def batch_end(self) -> None:
        self._batch.config = None

    def _config(self) -> smtp.SmtpConfig:
        config = getattr(self._batch, "config", None)
        return config if config is not None else email_smtp_config()

    def targets(self, *, event, members, rule, config) -> list[Recipient]:
        """Each address once, compared case-insensitively; a member without one is skipped.

        Members' own addresses come first, then the rule's distribution lists
        (``extra_emails``), so a list address that is also a member's keeps the member.
        """
        by_address: dict[str, int | None] = {}
        for member in members:
            if member.email:
                by_address.setdefault(member.email.lower(), member.pk)
        for address in getattr(rule, "extra_emails", None) or ():
            by_address.setdefault(address.lower(), None)
        return [Recipient(target=address, user_id=user_id)
                for address, user_id in by_address.items()]

    def configuration_problems(self) -> list[str]:
        """Enabled and complete, or what is missing. Saving refuses ``enabled`` without a
        host, a port or a from address, but a row written otherwise (an older version, SQL
        by hand) may lack one: then nothing is attempted and deliveries wait, as while email
        is off. In a batch, answers from the settings the batch read; outside one, reads
        only the fields it checks (not the encrypted password)."""
        config = getattr(self._batch, "config", None)
        if config is None:
            stored = EmailSettings.objects.filter(enabled=True).values(*smtp.REQUIRED).first()
            config = smtp.SmtpConfig(**stored) if stored is not None else None
        elif not self._batch.enabled:
            config = None
        if config is None:
            return ["Email is not enabled: configure and save it in Email settings."]
        missing = config.missing
        if missing:
            return [f"Email settings lack {', '.join(missing)}: complete and save them."]
        return []

    def target_fields(self, target, target_data) -> dict:
        return {"address": target}

    def render_event(self, *, event, title, recipient, delivery_id
                     ) -> EmailMessage | smtp.Envelope:
        """Raises ValueError for an address that is not one valid address.

        An event's message is prepared once for all its recipients in this process
        (``channels_app.email_batch``: the message ``emails.build_event_email`` makes, in a
        fraction of the time), the first one's included."""
        sender = self._config()
        acknowledge = event.priority in Priority.IMMEDIATE
        unsubscribe = preferences_url(recipient)
        prepared = self._prepared()
        key = (event.pk, title, unsubscribe, sender.from_email, sender.from_name)
        if key not in prepared:
            prepared[key] = email_batch.prepare_event_email(
                event=event, title=title, from_email=sender.from_email,
                from_name=sender.from_name, app_url=settings.DATAFI_APP_URL,
                unsubscribe_url=unsubscribe, acknowledge=acknowledge)
        return prepared[key].envelope(
            to=recipient.target, message_id=emails.make_message_id(delivery_id, sender.from_email),
            acknowledge_url=acknowledge_url(delivery_id) if acknowledge else None)

    def _prepared(self) -> dict:
        """This thread's prepared messages (``email_batch``), kept across the batches of an
        audience for ``PREPARED_SECONDS`` (their Date header is when they were prepared)."""
        now = time.monotonic()
        if now - getattr(self._batch, "prepared_since", -PREPARED_SECONDS) >= PREPARED_SECONDS:
            self._batch.prepared, self._batch.prepared_since = {}, now
        return self._batch.prepared

    def resolution_targets(self, recipients, *, asked) -> list[Recipient]:
        """Every address that got the event, when its routing rule asks."""
        return list(recipients) if asked else []

    def render_resolution(self, *, event, title, recipient, delivery_id) -> EmailMessage:
        sender = self._config()
        return emails.build_resolution_email(
            event=event, title=title, to=recipient.target, from_email=sender.from_email,
            from_name=sender.from_name, app_url=settings.DATAFI_APP_URL,
            message_id=emails.make_message_id(delivery_id, sender.from_email),
            unsubscribe_url=preferences_url(recipient),
        )

    def render_digest(self, *, priority, events, recipient, delivery_id) -> EmailMessage:
        sender = self._config()
        return emails.build_digest_email(
            bucket_priority=priority, events=list(events), to=recipient.target,
            from_email=sender.from_email, from_name=sender.from_name,
            app_url=settings.DATAFI_APP_URL,
            message_id=emails.make_message_id(delivery_id, sender.from_email),
            unsubscribe_url=preferences_url(recipient),
        )

    def send(self, message: EmailMessage | smtp.Envelope) -> SendResult:
        """Over this process's kept connection (``transports.smtp_pool``)."""
        limits = smtp_pool.Limits(max_messages=settings.SMTP_MAX_MESSAGES_PER_CONNECTION,
                                  max_idle_seconds=settings.SMTP_MAX_IDLE_SECONDS)
        sent = smtp_pool.pool.send(self._config(), smtp.envelope_of(message), limits=limits)
        return SendResult(status_code=sent.code,
                          response=f"{sent.code} {sent.text}"[:RESPONSE_KEEP_CHARS])
