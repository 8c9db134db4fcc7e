"""Email: one message per distinct address, members' addresses and distribution lists.

Sending over SMTP is not part of this build yet: routing records these recipients as
pending deliveries, and a digest flush leaves them alone (``sends_digests`` is False).
"""

from channels_app.models import Channel

from .base import ChannelBackend, Recipient


class EmailBackend(ChannelBackend):
    name = Channel.EMAIL

    def recipients(self, *, users, extra_addresses=()) -> list[Recipient]:
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
