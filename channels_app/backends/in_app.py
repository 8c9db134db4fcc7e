"""In-app: notifications in the bell, one per user. Always on, nothing to configure.

Rendering gives a notification's content; ``notifications`` writes the row, in the
transaction that routes the event or sends the digest (which is what makes it exactly-once).
"""

from dataclasses import dataclass, field

from channels_app.models import Channel

from .base import ChannelBackend, Recipient


@dataclass(frozen=True)
class InAppMessage:
    """The content of one notification in the bell."""

    title: str
    priority: str
    items: list[dict] = field(default_factory=list)


class InAppBackend(ChannelBackend):
    name = Channel.IN_APP
    sends_digests = True
    external = False

    def recipients(self, *, users, extra_addresses=(), endpoints=(), event=None
                   ) -> list[Recipient]:
        """Every user once; extra addresses mean nothing in the bell."""
        seen = set()
        result = []
        for user in users:
            if user.pk not in seen:
                seen.add(user.pk)
                result.append(Recipient(user_id=user.pk))
        return result

    def render_event(self, *, event, title, recipient, delivery_id) -> InAppMessage:
        return InAppMessage(title=title, priority=event.priority)

    def render_digest(self, *, priority, events, recipient, delivery_id) -> InAppMessage:
        return InAppMessage(
            title=self.digest_title(priority=priority, count=len(events)), priority=priority,
            items=[self.digest_item(event=event, title=title) for event, title in events],
        )

    def digest_title(self, *, priority: str, count: int) -> str:
        noun = "notification" if count == 1 else "notifications"
        return f"{count} {priority} {noun}"

    def digest_item(self, *, event, title: str) -> dict:
        """One event as a digest lists it: the same for every recipient, so a flush can
        render each event once for all the digests listing it."""
        return {
            "event_id": str(event.pk),
            "event_type": event.event_type.key,
            "category": event.event_type.category.slug,
            "priority": event.priority,
            "title": title,
            "payload": event.payload,
            "workspace_id": event.workspace.public_id if event.workspace_id else None,
            "workspace_name": event.workspace.name if event.workspace_id else None,
            "occurred_at": event.occurred_at.isoformat(),
        }

    def send(self, message):
        raise NotImplementedError(
            "in-app notifications are rows in the bell, written by notifications")
