"""Email: one message per distinct address, members' addresses and distribution lists.

Messages are built by ``channels_app.emails`` with the sender from the email settings and
sent over SMTP (``channels_app.transports.smtp``). While the settings are not enabled, or
are enabled but incomplete, ``is_enabled`` is False and email deliveries wait as pending.
"""

from email.message import EmailMessage

from django.conf import settings

from channels_app import emails
from channels_app.models import Channel, EmailSettings
from channels_app.services import email_smtp_config
from channels_app.transports import smtp

from .base import RESPONSE_KEEP_CHARS, ChannelBackend, Recipient, SendResult

#: The app's page where a signed-in user chooses what reaches them (the web app's URL).
PREFERENCES_PATH = "/preferences/"


def preferences_url(recipient: Recipient) -> str | None:
    """Where a member manages their email (``List-Unsubscribe``); None for a list address."""
    if recipient.user_id is None:
        return None
    return settings.DATAFI_APP_URL.rstrip("/") + PREFERENCES_PATH


class EmailBackend(ChannelBackend):
    name = Channel.EMAIL
    sends_digests = True

    @property
    def max_attempts(self) -> int:
        return settings.DATAFI_EMAIL_MAX_ATTEMPTS

    def recipients(self, *, users, extra_addresses=(), endpoints=(), event=None
                   ) -> list[Recipient]:
        """Each address once, compared case-insensitively; a user without one is skipped.

        A user's own address comes first, so a list address that is also a member's keeps
        the member (their preferences and audience checks apply).
        """
        by_address: dict[str, int | None] = {}
        for user in users:
            if user.email:
                by_address.setdefault(user.email.lower(), user.pk)
        for address in extra_addresses:
            by_address.setdefault(address.lower(), None)
        return [Recipient(user_id=user_id, address=address)
                for address, user_id in by_address.items()]

    def is_enabled(self) -> bool:
        """Enabled and complete. Saving refuses ``enabled`` without a host, a port or a from
        address, but a row written otherwise (an older version, SQL by hand) may lack one:
        then nothing is attempted and deliveries wait, as while email is off. Reads only
        the fields it checks (not the encrypted password)."""
        stored = (EmailSettings.objects.filter(enabled=True)
                  .values(*smtp.REQUIRED).first())
        return stored is not None and smtp.SmtpConfig(**stored).is_configured

    def render_event(self, *, event, title, recipient, delivery_id) -> EmailMessage:
        """Raises ValueError for an address that is not one valid address."""
        sender = email_smtp_config()
        return emails.build_event_email(
            event=event, title=title, to=recipient.address, from_email=sender.from_email,
            from_name=sender.from_name, app_url=settings.DATAFI_APP_URL,
            message_id=emails.make_message_id(delivery_id, sender.from_email),
            unsubscribe_url=preferences_url(recipient),
        )

    def render_digest(self, *, priority, events, recipient, delivery_id) -> EmailMessage:
        sender = email_smtp_config()
        return emails.build_digest_email(
            bucket_priority=priority, events=list(events), to=recipient.address,
            from_email=sender.from_email, from_name=sender.from_name,
            app_url=settings.DATAFI_APP_URL,
            message_id=emails.make_message_id(delivery_id, sender.from_email),
            unsubscribe_url=preferences_url(recipient),
        )

    def send(self, message: EmailMessage) -> SendResult:
        sent = smtp.send_message(email_smtp_config(), message)
        return SendResult(status_code=sent.code,
                          response=f"{sent.code} {sent.text}"[:RESPONSE_KEEP_CHARS])
