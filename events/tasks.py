from celery import shared_task

from config import control_plane

from .services.outbox import outbox_sweep as _outbox_sweep


@shared_task(**control_plane.task_options(control_plane.OUTBOX_SWEEP))
def outbox_sweep() -> int:
    """Enqueue routing for events whose on-commit publish never reached the broker."""
    return _outbox_sweep()
