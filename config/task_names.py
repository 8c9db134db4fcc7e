"""Celery task names, in one place: the tasks declare them, settings route them to queues,
and a lower layer enqueues a higher one's task by name without importing it."""

OUTBOX_SWEEP = "events.outbox_sweep"
EVENT_ROUTE = "notifications.event_route"
DIGEST_FLUSH = "notifications.digest_flush"
DELIVERY_SEND = "notifications.delivery_send"
DIGEST_SEND = "notifications.digest_send"
DELIVERY_SWEEP = "notifications.delivery_sweep"
