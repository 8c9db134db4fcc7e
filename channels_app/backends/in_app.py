"""In-app: notifications in the bell, one per user. Always on, nothing to configure."""

from channels_app.models import Channel

from .base import ChannelBackend, Recipient


class InAppBackend(ChannelBackend):
    name = Channel.IN_APP
    sends_digests = True

    def recipients(self, *, users, extra_addresses=()) -> list[Recipient]:
        """Every user once; extra addresses mean nothing in the bell."""
        seen = set()
        result = []
        for user in users:
            if user.pk not in seen:
                seen.add(user.pk)
                result.append(Recipient(user_id=user.pk))
        return result
