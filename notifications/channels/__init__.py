"""What routing and digest flushes write for each channel: rows, never network calls.

A channel backend (``channels_app.backends``) says who receives; these functions record
it: immediate in-app notifications in the bell, or deliveries (sent now or waiting in a
digest bucket), and the in-app digests a flush writes. External channels' deliveries are
sent by ``notifications.delivery`` after the transaction commits.
"""

from django.utils import timezone

from channels_app.backends import Recipient, registered_backends
from channels_app.models import Channel
from events.models import Event

from ..models import Delivery
from . import in_app

#: Channel -> what sends its claimed digests of a bucket; returns how many were sent.
DIGEST_SENDERS = {Channel.IN_APP: in_app.digests_send}


def recipients_record(*, channel: str, event: Event, recipients: list[Recipient],
                      bucket: str) -> list[Delivery]:
    """Record ``event`` for ``recipients`` on ``channel``; ``bucket`` "" means now.

    Must run inside the routing transaction. Returns the deliveries written (none for
    immediate in-app, which are notifications).
    """
    if channel == Channel.IN_APP and not bucket:
        in_app.notifications_create(event=event, recipients=recipients)
        return []
    due = None if bucket else timezone.now()  # an immediate send is due now (see the sweep)
    return Delivery.objects.bulk_create(
        [
            Delivery(event=event, channel=channel, user_id=r.user_id, address=r.address,
                     endpoint_id=r.endpoint_id, priority=event.priority, bucket=bucket,
                     next_attempt_at=due)
            for r in recipients
        ],
        batch_size=1000,
    )


def digest_channels() -> list[str]:
    """The channels whose medium, low and info items a flush claims into digests."""
    return [backend.name for backend in registered_backends()
            if backend.sends_digests and (backend.external or backend.name in DIGEST_SENDERS)]


def digests_send(*, channel: str, bucket: str) -> int:
    """Write ``channel``'s claimed digests of ``bucket`` (in-app); returns how many."""
    return DIGEST_SENDERS[channel](bucket=bucket)
