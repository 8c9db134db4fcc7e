"""Reads of channels_app."""

from .backends.webhook import EndpointTarget
from .models import WebhookEndpoint


def webhook_endpoint_targets() -> list[EndpointTarget]:
    """The active webhook endpoints' filters, as plain data for routing. One query."""
    rows = WebhookEndpoint.objects.filter(is_active=True).order_by("pk").values_list(
        "pk", "categories", "event_types", "workspace_id")
    return [EndpointTarget(id=pk, categories=tuple(categories or ()),
                           event_types=tuple(event_types or ()), workspace_id=workspace_id)
            for pk, categories, event_types, workspace_id in rows]
