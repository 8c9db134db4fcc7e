from celery import shared_task

from . import services


@shared_task(name="events.outbox_sweep")
def outbox_sweep() -> int:
    """Enqueue routing for events whose on-commit publish never reached the broker."""
    return services.outbox_sweep()
