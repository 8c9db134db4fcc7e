"""The outbox sweep runs every 30 s (was every minute).

Critical and high events whose message was lost (a worker killed while holding it, a broker
restarted empty) are enqueued again ``DATAFI_OUTBOX_URGENT_STALE_SECONDS`` after their last
enqueue; the sweep interval adds to that, and together they stay well under 2 minutes.
A schedule an admin has changed from the old default is left alone.
"""

from django.db import migrations
from django.utils import timezone

SWEEP = "Sweep unrouted events (outbox)"


def set_interval(every, period, *, was):
    def apply(apps, schema_editor):
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        changed = PeriodicTask.objects.filter(
            name=SWEEP, interval__every=was[0], interval__period=was[1]
        ).update(interval=interval, date_changed=timezone.now())
        if changed:  # tell a running beat that the schedule changed
            PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_delivery_sweep_schedule"),
    ]

    operations = [
        migrations.RunPython(
            set_interval(30, "seconds", was=(1, "minutes")),
            set_interval(1, "minutes", was=(30, "seconds")),
        ),
    ]
