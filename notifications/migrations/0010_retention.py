"""Retention: an index to find old digests. (The hourly purge's periodic task was created here;
``manage.py sync_schedule`` writes beat's schedule now, from ``config/control_plane.py``.)"""

from django.db import migrations, models


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
    ]
