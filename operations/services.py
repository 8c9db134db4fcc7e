"""Writes of the operations app that are not rollups."""

from django.utils import timezone

from .models import BeatHeartbeat


def beat_heartbeat_record(*, now=None) -> None:
    """Beat's heartbeat is now (one row, written in place; idempotent)."""
    BeatHeartbeat.objects.update_or_create(pk=BeatHeartbeat.SINGLETON,
                                           defaults={"beat_at": now or timezone.now()})
