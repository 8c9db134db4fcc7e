"""Email deliveries recorded as pending before email was sent at all: those older than a
day are marked expired (news that old is no use); younger ones are sent by the delivery
sweep once email is enabled. Said in the README."""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone


def expire_old_email_deliveries(apps, schema_editor):
    Delivery = apps.get_model("notifications", "Delivery")
    now = timezone.now()
    Delivery.objects.filter(channel="email", status="pending",
                            created_at__lt=now - timedelta(days=1)).update(
        status="expired", updated_at=now,
        last_error="Recorded before email was sent, more than a day before it could be.")
    # The rest is due now: the sweep sends it (immediate ones) or a flush claims it.
    Delivery.objects.filter(channel="email", status="pending", bucket="").update(
        next_attempt_at=now)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0003_delivery_pipeline")]

    operations = [migrations.RunPython(expire_old_email_deliveries, migrations.RunPython.noop)]
