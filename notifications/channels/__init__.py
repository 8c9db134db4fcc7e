"""What routing and digest flushes write for each channel: rows, never network calls.

A channel backend (``channels_app.backends``) says who receives; these functions record
it: immediate in-app notifications in the bell, or deliveries (sent now or waiting in a
digest bucket), and the in-app digests a flush sends.
"""

from channels_app.backends import Recipient, registered_backends
from channels_app.models import Channel
from events.models import Event

from ..models import Delivery
from . import in_app

#: Channel -> what sends its claimed digests of a bucket; returns how many were sent.
DIGEST_SENDERS = {Channel.IN_APP: in_app.digests_send}


def recipients_record(*, channel: str, event: Event, recipients: list[Recipient],
                      bucket: str) -> int:
    """Record ``event`` for ``recipients`` on ``channel``; ``bucket`` "" means now.

    Must run inside the routing transaction. Returns the number of recipients.
    """
    if channel == Channel.IN_APP and not bucket:
        in_app.notifications_create(event=event, recipients=recipients)
    else:
        Delivery.objects.bulk_create(
            [
                Delivery(event=event, channel=channel, user_id=r.user_id, address=r.address,
                         endpoint_id=r.endpoint_id, priority=event.priority, bucket=bucket)
                for r in recipients
            ],
            batch_size=1000,
        )
    return len(recipients)


def digest_channels() -> list[str]:
    """The channels whose medium, low and info items a flush claims and sends as digests."""
    return [backend.name for backend in registered_backends()
            if backend.sends_digests and backend.name in DIGEST_SENDERS]


def digests_send(*, channel: str, bucket: str) -> int:
    """Send ``channel``'s claimed digests of ``bucket``; returns how many were sent."""
    return DIGEST_SENDERS[channel](bucket=bucket)
