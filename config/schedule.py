"""Beat's schedule, written from the control plane (``config.control_plane``).

``manage.py sync_schedule`` (run by ``bin/serve``) calls ``schedule_sync``. Like the event
catalog's sync, code owns what an entry runs (its task and kwargs; its queue comes from the
routes) and the admin owns what it may tune (whether it is enabled, and how often it runs):
an entry that exists keeps its schedule and switch; a missing one is created with the
table's interval.
"""

import json
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from . import control_plane


@dataclass
class ScheduleSyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def schedule_sync(*, entries=None) -> ScheduleSyncResult:
    """Create or refresh a PeriodicTask for every periodic run of the control plane;
    idempotent. Tells a running beat when anything changed."""
    result = ScheduleSyncResult()
    entries = control_plane.schedules() if entries is None else entries
    with transaction.atomic():
        existing = {task.name: task for task in PeriodicTask.objects.filter(
            name__in=[schedule.name for _, schedule in entries])}
        for task, schedule in entries:
            wanted = {"task": task.name, "kwargs": json.dumps(schedule.kwargs)}
            current = existing.get(schedule.name)
            if current is None:
                interval, _ = IntervalSchedule.objects.get_or_create(
                    **_interval(schedule.every_seconds))
                PeriodicTask.objects.create(name=schedule.name, interval=interval,
                                            enabled=True, **wanted)
                result.created.append(schedule.name)
                continue
            changed = [name for name, value in wanted.items()
                       if getattr(current, name) != value]
            if changed:
                for name in changed:
                    setattr(current, name, wanted[name])
                current.save(update_fields=changed)
                result.updated.append(schedule.name)
        if result.created or result.updated:
            PeriodicTasks.objects.update_or_create(ident=1,
                                                   defaults={"last_update": timezone.now()})
    return result


def _interval(seconds: int) -> dict:
    """The interval in the largest unit that divides it (the admin shows "every 5 minutes")."""
    for period, length in ((IntervalSchedule.HOURS, 3600), (IntervalSchedule.MINUTES, 60)):
        if seconds % length == 0:
            return {"every": seconds // length, "period": period}
    return {"every": seconds, "period": IntervalSchedule.SECONDS}
