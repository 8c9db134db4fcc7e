"""The delivery sweep's periodic task: now written by sync_schedule.

Beat's schedule is no longer written by migrations: ``manage.py sync_schedule`` writes it
from the control plane (``config/control_plane.py``) and adopts the entries this migration
created on installs that ran it, by name. Kept, empty, so the migration graph stays whole.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_expire_old_email_deliveries"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = []
