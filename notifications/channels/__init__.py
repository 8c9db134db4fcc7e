"""What routing and digest flushes write for each channel: rows, never network calls.

A channel backend (``channels_app.backends``) says who receives; these functions record
it: immediate in-app notifications in the bell, or deliveries (sent now or waiting in a
digest bucket), and the in-app digests a flush writes. External channels' deliveries are
sent by ``notifications.delivery`` after the transaction commits.
"""

from dataclasses import dataclass

from django.utils import timezone

from channels_app.backends import Recipient, registered_backends
from channels_app.models import Channel
from events.models import Event

from ..models import Delivery
from . import in_app

#: Channel -> what sends its claimed digests of a bucket; returns how many were sent.
DIGEST_SENDERS = {Channel.IN_APP: in_app.digests_send}


@dataclass(frozen=True)
class ChannelRoute:
    """What routing decided for one event on one channel: who, and when ("" = now)."""

    event: Event
    channel: str
    recipients: list[Recipient]
    bucket: str


def routes_record(routes: list[ChannelRoute]) -> list[Delivery]:
    """Record ``routes`` (of any number of events): one insert of notifications, one of
    deliveries, whatever the number of events and recipients.

    Must run inside the routing transaction. Immediate in-app routes become notifications
    (a repeat for the same user and event is skipped); every other route becomes
    deliveries, sent now or waiting in their digest bucket. Returns the deliveries written.
    """
    now = timezone.now()
    in_app_now = [r for r in routes if r.channel == Channel.IN_APP and not r.bucket]
    if in_app_now:
        in_app.notifications_create(routes=in_app_now)
    return Delivery.objects.bulk_create(
        [
            Delivery(event=route.event, channel=route.channel, user_id=r.user_id,
                     address=r.address, endpoint_id=r.endpoint_id, priority=route.event.priority,
                     bucket=route.bucket, next_attempt_at=None if route.bucket else now)
            for route in routes if route.channel != Channel.IN_APP or route.bucket
            for r in route.recipients
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
