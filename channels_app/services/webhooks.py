"""Webhook endpoints: save, delete, test now, and keep their delivery health."""

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Concat, Right
from django.utils import timezone

from core.errors import full_clean
from events.catalog import Priority
from events.exceptions import UnknownEventType
from events.services.emit import event_emit

from ..errors import DeliveryError
from ..models import RECENT_OUTCOMES, WebhookEndpoint
from ..webhooks import payloads
from ..webhooks.sending import WebhookMessage, post

logger = logging.getLogger(__name__)

#: The fields of WebhookEndpoint an admin or API client sets.
WEBHOOK_ENDPOINT_FIELDS = ("name", "url", "secret", "max_retries", "is_active", "categories",
                           "event_types", "workspace", "format", "routing_key")
#: Write-only secrets: absent or "" keeps the stored value, None removes it.
WEBHOOK_SECRET_FIELDS = ("secret", "routing_key")
ENDPOINT_DISABLED_EVENT = "system.webhook_endpoint_disabled"


def webhook_endpoint_save(*, values: Mapping[str, Any],
                          endpoint: WebhookEndpoint | None = None) -> WebhookEndpoint:
    """Create an endpoint, or change ``endpoint``, from ``values`` (WEBHOOK_ENDPOINT_FIELDS).

    ``secret`` and ``routing_key``: absent or "" keep the stored value, None removes it.
    Switching an inactive endpoint on clears its failure run and the reason it was
    deactivated. Raises ``ApplicationError`` naming the field (e.g. a URL the SSRF guard
    refuses), saving nothing.
    """
    endpoint = endpoint if endpoint is not None else WebhookEndpoint()
    was_active = endpoint.is_active if endpoint.pk else False
    for name, value in values.items():
        if name not in WEBHOOK_ENDPOINT_FIELDS:
            continue
        if name in WEBHOOK_SECRET_FIELDS:
            if value == "":
                continue
            value = value or ""  # None removes it
        setattr(endpoint, name, value)
    if endpoint.is_active and not was_active:
        endpoint.consecutive_failures = 0
        endpoint.deactivated_reason = ""
        endpoint.deactivated_at = None
    full_clean(endpoint)
    endpoint.save()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint; its deliveries stay in the log (a pending one then fails)."""
    endpoint.delete()


@dataclass(frozen=True)
class WebhookTestResult:
    """What "Send test event" answers."""

    ok: bool
    status_code: int | None
    error: str
    duration_ms: int
    response: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "status_code": self.status_code, "error": self.error,
                "duration_ms": self.duration_ms}


def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookTestResult:
    """Send a signed sample event to ``endpoint`` now (active or not) and say how it went.

    The sample is a ``webhook.test`` event in the endpoint's format; it is not recorded as
    a delivery.
    """
    now = timezone.now()
    sample = SimpleNamespace(
        pk=uuid.uuid4(), priority=Priority.INFO, occurred_at=now,
        event_type=SimpleNamespace(key="webhook.test", label="Test event",
                                   category=SimpleNamespace(slug="system")),
        workspace_id=endpoint.workspace_id, workspace=endpoint.workspace,
        payload={"message": "A test event from Datafi: this endpoint is reachable.",
                 "endpoint": endpoint.name},
    )
    body = payloads.build_payload(format=endpoint.format, event=sample,
                                  title=f"Test event for {endpoint.name}",
                                  routing_key=endpoint.routing_key)
    message = WebhookMessage(endpoint_id=endpoint.pk, url=endpoint.url,
                             event_type="webhook.test", delivery_id=str(uuid.uuid4()),
                             body=payloads.encode(body), secret=endpoint.secret)
    started = time.monotonic()
    try:
        response = post(message)
    except DeliveryError as error:
        return WebhookTestResult(ok=False, status_code=error.code, error=error.detail,
                                 duration_ms=round((time.monotonic() - started) * 1000))
    return WebhookTestResult(ok=True, status_code=response.status_code, error="",
                             duration_ms=response.duration_ms, response=response.text)


def webhook_endpoint_record_outcome(*, endpoint_id: int, delivered: bool,
                                    status_code: int | None, error: str,
                                    times: int = 1) -> None:
    """Keep an endpoint's delivery health; deactivate it when it must stop.

    Every finished delivery (``times`` of them alike, in a row) sets the last status and
    time and joins the recent outcomes (the success rate of the last ``RECENT_OUTCOMES``),
    in one UPDATE. A delivered one ends the run of failures; a failed one lengthens it, and
    410 Gone, or a run of ``WEBHOOK_DISABLE_AFTER_FAILURES``, deactivates the endpoint and
    emits ``system.webhook_endpoint_disabled`` (high, to staff). Must be called inside the
    transaction that records the delivery's outcome.
    """
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
    now = timezone.now()
    health = {
        "last_delivery_status": "delivered" if delivered else "failed",
        "last_delivery_at": now,
        "recent_outcomes": Right(Concat(F("recent_outcomes"),
                                        Value(("D" if delivered else "F") * times)),
                                 RECENT_OUTCOMES),
    }
    if delivered:
        endpoints.update(consecutive_failures=0, **health)
        return
    endpoints.update(consecutive_failures=F("consecutive_failures") + times, **health)
    endpoint = endpoints.select_for_update().first()
    if endpoint is None or not endpoint.is_active:
        return
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    reason = ""
    if status_code == 410:
        reason = "The receiver answered 410 Gone."
    elif limit and endpoint.consecutive_failures >= limit:
        reason = f"{endpoint.consecutive_failures} deliveries in a row failed."
    if reason:
        endpoint.is_active = False
        endpoint.deactivated_reason = reason
        endpoint.deactivated_at = now
        endpoint.save(update_fields=["is_active", "deactivated_reason", "deactivated_at",
                                     "updated_at"])
    if reason:
        logger.warning("webhook endpoint %s deactivated: %s", endpoint.pk, reason)
        try:
            event_emit(ENDPOINT_DISABLED_EVENT, payload={
                "endpoint_id": endpoint.pk, "endpoint_name": endpoint.name,
                "host": urlsplit(endpoint.url).hostname or "", "reason": reason,
                "last_error": error[:500], "consecutive_failures": endpoint.consecutive_failures,
            })
        except UnknownEventType:
            logger.error("%s is not in the catalog: run manage.py sync_event_catalog",
                         ENDPOINT_DISABLED_EVENT)
