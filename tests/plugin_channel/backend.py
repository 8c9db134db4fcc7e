"""The team chat channel: one JSON message per member, by user name, POSTed to a chat
service (``CHAT_CHANNEL_URL``). Everything about it is here."""

import json
import os

import requests

from channels_app.backends import ChannelBackend, Recipient, SendResult
from channels_app.errors import PermanentError, TransientError


class ChatBackend(ChannelBackend):
    name = "chat"
    label = "Team chat"
    user_choosable = True  # a column on the preferences page
    user_fields = ("username",)  # loaded with the audience
    queue = "chat_sends"  # a lane of its own: run a worker for it
    batched_queue = "chat_sends"
    max_attempts = 3

    def targets(self, *, event, members, rule, config) -> list[Recipient]:
        return [Recipient(target=member.username, user_id=member.pk) for member in members]

    def configuration_problems(self) -> list[str]:
        return [] if os.environ.get("CHAT_CHANNEL_URL") else ["CHAT_CHANNEL_URL is not set."]

    def render_event(self, *, event, title, recipient, delivery_id) -> dict:
        return {"to": recipient.target, "text": title, "id": str(delivery_id)}

    def render_digest(self, *, priority, events, recipient, delivery_id) -> dict:
        return {"to": recipient.target, "text": f"{len(events)} {priority} notifications",
                "items": [title for _, title in events], "id": str(delivery_id)}

    def send(self, message: dict) -> SendResult:
        try:
            answer = requests.post(os.environ["CHAT_CHANNEL_URL"], data=json.dumps(message),
                                   headers={"Content-Type": "application/json"}, timeout=5)
        except requests.RequestException as exc:
            raise TransientError(f"chat unreachable: {type(exc).__name__}",
                                 kind="unreachable") from None
        if answer.status_code >= 500:
            raise TransientError(f"chat answered {answer.status_code}", kind="server_error",
                                 code=answer.status_code)
        if answer.status_code >= 400:
            raise PermanentError(f"chat refused: {answer.status_code}", kind="rejected",
                                 code=answer.status_code)
        return SendResult(status_code=answer.status_code, response=answer.text[:200])
