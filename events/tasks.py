from celery import shared_task

from config import task_names

from . import services


@shared_task(name=task_names.OUTBOX_SWEEP)
def outbox_sweep() -> int:
    """Enqueue routing for events whose on-commit publish never reached the broker."""
    return services.outbox_sweep()
