"""What waits, read now from the database: the figures /metrics, ``manage.py status`` and
the Overview share. Each is one query on an index made for it (pending events, pending
digest items) or on a small table (webhook endpoints)."""

from django.db.models import Count, Q

from channels_app.models import WebhookEndpoint
from events.catalog import Priority
from events.models import Event
from notifications.selectors.digests import pending_digest_table

#: Webhook endpoints by delivery health: active and delivering, active whose last
#: deliveries failed, switched off (by an admin, or after failing too often: 410 Gone,
#: ``WEBHOOK_DISABLE_AFTER_FAILURES``).
ENDPOINT_STATES = ("healthy", "failing", "inactive")


def outbox_pending() -> dict[str, int]:
    """Priority -> events waiting to be routed (every priority listed)."""
    rows = (Event.objects.filter(status=Event.Status.PENDING).values("priority")
            .annotate(n=Count("pk")).order_by())
    counts = {row["priority"]: row["n"] for row in rows}
    return {priority: counts.get(priority, 0) for priority in Priority.VALUES}


def digest_pending() -> dict[str, dict[str, int]]:
    """Bucket -> channel -> items waiting for a flush (every bucket and channel listed)."""
    return pending_digest_table()


def webhook_endpoint_states() -> dict[str, int]:
    """``ENDPOINT_STATES`` -> number of webhook endpoints."""
    counts = WebhookEndpoint.objects.aggregate(
        healthy=Count("pk", filter=Q(is_active=True, consecutive_failures=0)),
        failing=Count("pk", filter=Q(is_active=True, consecutive_failures__gt=0)),
        inactive=Count("pk", filter=Q(is_active=False)),
    )
    return {state: counts[state] for state in ENDPOINT_STATES}
