"""Retention: an index to find old digests, and the hourly purge in beat's schedule."""

import json

from django.db import migrations, models

NAME = "Delete what is older than the retention window"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(name=NAME, defaults={
        "task": "notifications.retention_purge", "interval": interval, "kwargs": json.dumps({}),
        "enabled": True})
    from django.utils import timezone

    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0009_routing_version"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="digest",
            index=models.Index(fields=["created_at"], name="digest_created_idx"),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
