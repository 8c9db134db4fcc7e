"""Thin Celery wrappers; names, queues and schedules from the control plane."""

from celery import shared_task

from config import control_plane

from . import rollups
from .services import beat_heartbeat_record


@shared_task(**control_plane.task_options(control_plane.BEAT_HEARTBEAT))
def beat_heartbeat() -> None:
    """Record that beat sent its schedule and the urgent lane ran it (/readyz reads it)."""
    beat_heartbeat_record()


@shared_task(**control_plane.task_options(control_plane.OVERVIEW_ROLLUP))
def overview_rollup() -> None:
    """Count the hours that are still settling, and the backlog now, for the Overview."""
    rollups.overview_rollup()
