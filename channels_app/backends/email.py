"""Email: who receives an event's email, recorded as pending deliveries.

Routing plans one delivery per address (members' addresses and the rule's distribution
lists). Sending over SMTP is not part of this build yet, so these deliveries stay pending,
visible in the admin's Deliveries, and a digest flush leaves them alone
(``sends_digests`` is False).
"""

from channels_app.models import Channel
from notifications.models import Delivery

from .base import ChannelBackend, register


@register
class EmailChannel(ChannelBackend):
    name = Channel.EMAIL

    def route(self, *, event, users, rule, bucket) -> int:
        recipients: dict[str, int | None] = {}
        for user in users:
            if user.email:
                recipients.setdefault(user.email.lower(), user.pk)
        for address in rule.extra_emails if rule is not None else []:
            recipients.setdefault(address.lower(), None)
        Delivery.objects.bulk_create(
            [
                Delivery(event=event, channel=self.name, user_id=user_id, address=address,
                         priority=event.priority, bucket=bucket)
                for address, user_id in recipients.items()
            ],
            batch_size=1000,
        )
        return len(recipients)
