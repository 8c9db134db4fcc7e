"""Every Celery task's name, in one place.

Tasks are registered under these names (``@shared_task(name=...)``), routed by them in
settings and sent by them (``send_task``), so the code that sends a task never imports the
app that runs it. This module lives in ``events``, the floor every app may import; it
imports nothing, so settings can use it. Migrations keep their literal strings: they
record history.
"""

OUTBOX_SWEEP = "events.outbox_sweep"
EVENT_ROUTE = "notifications.event_route"
#: Routing of a critical or high event: the same work, on the priority lane (``urgent``).
EVENT_ROUTE_URGENT = "notifications.event_route_urgent"
#: Routing of every pending medium, low and info event, in batches (one task for many).
EVENTS_ROUTE_PENDING = "notifications.events_route_pending"
DIGEST_FLUSH = "notifications.digest_flush"
DELIVERY_SEND = "notifications.delivery_send"
#: Publishes the send tasks of many deliveries (a large audience), off the routing worker.
DELIVERIES_PUBLISH = "notifications.deliveries_publish"
DIGEST_SEND = "notifications.digest_send"
WEBHOOK_SEND = "notifications.webhook_send"
DELIVERY_SWEEP = "notifications.delivery_sweep"
#: Deletes what is older than the retention window and finished (hourly).
RETENTION_PURGE = "notifications.retention_purge"
