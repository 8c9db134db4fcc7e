"""The periodic tasks: three digest flushes and the outbox sweep, editable in the admin."""

import json

from django.db import migrations

SCHEDULE = [
    # name, task, kwargs, every, period
    ("Flush 5 min digests (medium)", "notifications.digest_flush", {"bucket": "5m"}, 5, "minutes"),
    ("Flush 15 min digests (low)", "notifications.digest_flush", {"bucket": "15m"}, 15, "minutes"),
    ("Flush 1 hr digests (info)", "notifications.digest_flush", {"bucket": "1h"}, 1, "hours"),
    ("Sweep unrouted events (outbox)", "events.outbox_sweep", {}, 1, "minutes"),
]


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, task, kwargs, every, period in SCHEDULE:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "interval": interval, "kwargs": json.dumps(kwargs),
                      "enabled": True},
        )
    # Tell a running beat that the schedule changed.
    from django.utils import timezone

    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row[0] for row in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
