"""The webhook channel: one signed POST per matching active endpoint.

A delivery's target is the endpoint's id. Who receives is decided from plain data: routing
caches the active endpoints' filters (``load_config``) and the backend keeps the ones
whose filters match the event. Rendering loads the endpoint (its URL, format and secrets)
and builds the body (``channels_app.webhooks.payloads``); ``send`` signs it afresh for each
attempt and posts it (``channels_app.transports.http``). When a delivery is finished the
endpoint's health is kept (``delivery_finished``): 410 Gone, or
``WEBHOOK_DISABLE_AFTER_FAILURES`` failed deliveries in a row, deactivate it.
"""

import threading
from dataclasses import dataclass

from django.utils import timezone

from ..errors import PermanentError
from ..models import WebhookEndpoint
from ..services.webhooks import webhook_endpoint_record_outcome
from ..webhooks import payloads
from ..webhooks.sending import WebhookMessage, post
from .base import RESPONSE_KEEP_CHARS, ChannelBackend, Recipient, SendResult

WEBHOOK_CHANNEL = "webhook"


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


def endpoint_targets() -> list[EndpointTarget]:
    """The active webhook endpoints' filters, as plain data for routing. One query."""
    rows = WebhookEndpoint.objects.filter(is_active=True).order_by("pk").values_list(
        "pk", "categories", "event_types", "workspace_id")
    return [EndpointTarget(id=pk, categories=tuple(categories or ()),
                           event_types=tuple(event_types or ()), workspace_id=workspace_id)
            for pk, categories, event_types, workspace_id in rows]


class WebhookBackend(ChannelBackend):
    name = WEBHOOK_CHANNEL
    label = "Webhook"
    queue = "webhooks"  # its own lane, immediate and digest alike: a slow receiver holds
    batched_queue = "webhooks"  # up no email
    bulk_queue = "webhooks"

    def load_config(self) -> list[EndpointTarget]:
        return endpoint_targets()

    def targets(self, *, event, members=(), rule=None, config=()) -> list[Recipient]:
        """Each active endpoint whose filters match ``event``, once, in id order; the
        audience means nothing here. Pure: ``event`` needs its event type and category."""
        seen, result = set(), []
        for endpoint in config or ():
            if endpoint.id in seen or not endpoint.matches(event):
                continue
            seen.add(endpoint.id)
            result.append(Recipient(target=str(endpoint.id)))
        return result

    def describe_target(self, target, target_data) -> str:
        return f"endpoint {target}"

    def target_fields(self, target, target_data) -> dict:
        return {"endpoint_id": int(target) if target.isdigit() else None}

    def max_attempts_for(self, recipient: Recipient) -> int:
        retries = (WebhookEndpoint.objects.filter(pk=_endpoint_id(recipient))
                   .values_list("max_retries", flat=True).first())
        return 1 + (3 if retries is None else retries)

    def __init__(self):
        self._batch = threading.local()

    def batch_begin(self) -> None:
        """Each endpoint is loaded (its secrets decrypted) once per batch, and its health
        written once for the batch's delivered sends (``delivery_finished``)."""
        self._batch.endpoints, self._batch.delivered = {}, {}

    def batch_end(self) -> None:
        try:
            self._health_write()
        finally:
            self._batch.endpoints = self._batch.delivered = None

    def _endpoint(self, recipient: Recipient) -> WebhookEndpoint:
        cache = getattr(self._batch, "endpoints", None)
        pk = _endpoint_id(recipient)
        if cache is not None and pk in cache:
            endpoint = cache[pk]
        else:
            endpoint = WebhookEndpoint.objects.filter(pk=pk).first()
            if cache is not None:
                cache[pk] = endpoint
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

    def resolution_targets(self, recipients, *, asked) -> list[Recipient]:
        """PagerDuty and Slack endpoints, always (a PagerDuty incident stays open until it
        is resolved); datafi endpoints get the resolving event itself. One query."""
        told = set(WebhookEndpoint.objects.filter(
            pk__in=[_endpoint_id(r) for r in recipients], is_active=True,
            format__in=payloads.RESOLUTION_FORMATS).values_list("pk", flat=True))
        return [r for r in recipients if _endpoint_id(r) in told]

    def render_resolution(self, *, event, title, recipient, delivery_id
                          ) -> WebhookMessage | None:
        endpoint = self._endpoint(recipient)
        body = payloads.build_resolution(format=endpoint.format, event=event, title=title,
                                         routing_key=endpoint.routing_key)
        if body is None:
            return None
        return WebhookMessage(endpoint_id=endpoint.pk, url=endpoint.url,
                              event_type=event.event_type.key, delivery_id=str(delivery_id),
                              body=payloads.encode(body), secret=endpoint.secret)

    def send(self, message: WebhookMessage) -> SendResult:
        response = post(message)
        return SendResult(status_code=response.status_code,
                          response=response.text[:RESPONSE_KEEP_CHARS])

    def delivery_finished(self, *, recipient, delivered, status_code, error) -> None:
        """Keep the endpoint's health. In a batch, its delivered sends are counted and
        written together (one UPDATE an endpoint, not one a send: many events to one
        endpoint no longer queue on its row) at the batch's end, or before the endpoint's
        next failure, so its outcomes keep their order."""
        endpoint_id = _endpoint_id(recipient)
        counted = getattr(self._batch, "delivered", None)
        if delivered and counted is not None:
            counted[endpoint_id] = counted.get(endpoint_id, 0) + 1
            return
        self._health_write(endpoint_id)
        webhook_endpoint_record_outcome(endpoint_id=endpoint_id, delivered=delivered,
                                        status_code=status_code, error=error)

    def _health_write(self, *endpoint_ids) -> None:
        """Write the batch's counted delivered sends of ``endpoint_ids`` (all: none given)."""
        counted = getattr(self._batch, "delivered", None) or {}
        for endpoint_id in endpoint_ids or list(counted):
            times = counted.pop(endpoint_id, 0)
            if times:
                webhook_endpoint_record_outcome(endpoint_id=endpoint_id, delivered=True,
                                                status_code=None, error="", times=times)


def _endpoint_id(recipient: Recipient) -> int | None:
    return int(recipient.target) if recipient.target.isdigit() else None
