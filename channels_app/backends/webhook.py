"""Webhook: one POST per matching active endpoint, signed, over the guarded HTTP transport.

Who receives is decided from plain data: the caller passes the active endpoints
(``channels_app.selectors.webhook_endpoint_targets``) and the event; the backend keeps the
ones whose filters match. Rendering loads the endpoint (its URL, format and secrets) and
builds the body (``channels_app.webhooks.payloads``); ``send`` signs it afresh for each
attempt and posts it (``channels_app.transports.http``). When a delivery is finished the
endpoint's run of failures is kept (``delivery_finished``): 410 Gone, or
``WEBHOOK_DISABLE_AFTER_FAILURES`` failed deliveries in a row, deactivate it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from channels_app.errors import PermanentError
from channels_app.models import Channel, WebhookEndpoint
from channels_app.services import webhook_endpoint_record_outcome
from channels_app.webhooks import payloads
from channels_app.webhooks.sending import WebhookMessage, post

from .base import RESPONSE_KEEP_CHARS, ChannelBackend, Recipient, SendResult


@dataclass(frozen=True)
class EndpointTarget:
    """What routing needs of an endpoint to decide whether an event reaches it."""

    id: int
    categories: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    workspace_id: int | None = None

    def matches(self, event) -> bool:
        if self.workspace_id is not None and event.workspace_id != self.workspace_id:
            return False
        if self.categories and event.event_type.category.slug not in self.categories:
            return False
        return not self.event_types or event.event_type.key in self.event_types


class WebhookBackend(ChannelBackend):
    name = Channel.WEBHOOK
    sends_digests = True

    def recipients(self, *, users=(), extra_addresses=(), endpoints: Iterable = (),
                   event=None) -> list[Recipient]:
        """Each given endpoint whose filters match ``event``, once, in the given order.

        ``endpoints`` are the active endpoints as ``EndpointTarget``; users and addresses
        mean nothing here. Pure: ``event`` needs its event type and category loaded.
        """
        seen, result = set(), []
        for target in endpoints:
            if target.id in seen or (event is not None and not target.matches(event)):
                continue
            seen.add(target.id)
            result.append(Recipient(endpoint_id=target.id))
        return result

    def max_attempts_for(self, recipient: Recipient) -> int:
        retries = (WebhookEndpoint.objects.filter(pk=recipient.endpoint_id)
                   .values_list("max_retries", flat=True).first())
        return 1 + (3 if retries is None else retries)

    def _endpoint(self, recipient: Recipient) -> WebhookEndpoint:
        endpoint = WebhookEndpoint.objects.filter(pk=recipient.endpoint_id).first()
        if endpoint is None:
            raise PermanentError("The webhook endpoint was deleted.", kind="no_endpoint")
        if not endpoint.is_active:
            reason = f" ({endpoint.deactivated_reason})" if endpoint.deactivated_reason else ""
            raise PermanentError(f"The webhook endpoint is not active{reason}.",
                                 kind="inactive")
        return endpoint

    def render_event(self, *, event, title, recipient, delivery_id) -> WebhookMessage:
        endpoint = self._endpoint(recipient)
        body = payloads.build_payload(format=endpoint.format, event=event, title=title,
                                      routing_key=endpoint.routing_key)
        return WebhookMessage(endpoint_id=endpoint.pk, url=endpoint.url,
                              event_type=event.event_type.key, delivery_id=str(delivery_id),
                              body=payloads.encode(body), secret=endpoint.secret)

    def render_digest(self, *, priority, events, recipient, delivery_id) -> WebhookMessage:
        endpoint = self._endpoint(recipient)
        body = payloads.build_digest(format=endpoint.format, priority=priority,
                                     events=list(events), sent_at=timezone.now(),
                                     digest_id=delivery_id, routing_key=endpoint.routing_key)
        return WebhookMessage(endpoint_id=endpoint.pk, url=endpoint.url,
                              event_type=payloads.DIGEST_EVENT_TYPE,
                              delivery_id=str(delivery_id), body=payloads.encode(body),
                              secret=endpoint.secret)

    def send(self, message: WebhookMessage) -> SendResult:
        response = post(message)
        return SendResult(status_code=response.status_code,
                          response=response.text[:RESPONSE_KEEP_CHARS])

    def delivery_finished(self, *, recipient, delivered, status_code, error) -> None:
        webhook_endpoint_record_outcome(endpoint_id=recipient.endpoint_id, delivered=delivered,
                                        status_code=status_code, error=error)
