from celery import shared_task

from . import services, task_names


@shared_task(name=task_names.OUTBOX_SWEEP)
def outbox_sweep() -> int:
    """Enqueue routing for events whose on-commit publish never reached the broker."""
    return services.outbox_sweep()
