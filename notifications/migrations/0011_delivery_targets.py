"""Deliveries and digests address their receiver the way their channel says: ``target`` (and
``target_data``) instead of a column per kind of channel (``address``, ``endpoint_id``).
Email: the address; webhooks: the endpoint's id; the bell: the user's id. Channel names are
checked against the installed channels, no longer frozen into choices. Policies may hold
(``held``, ``release_at``) or skip (``skipped``, ``decision``, ``reason``) a delivery.

Webhook endpoints' delivery health moves onto the endpoint (channels_app 0006): it is
filled here from the deliveries of each endpoint, which only this app can read.
"""

from django.conf import settings
from django.db import migrations, models

import notifications.models.routing

WEBHOOK_SENT = ("webhook",)
RECENT = 100


def fill_targets(apps, schema_editor):
    for name in ("Delivery", "Digest"):
        model = apps.get_model("notifications", name)
        model.objects.exclude(address="").update(target=models.F("address"))
        model.objects.filter(address="", endpoint_id__isnull=False).update(
            target=models.functions.Cast("endpoint_id", models.CharField()))
        model.objects.filter(address="", endpoint_id__isnull=True, user__isnull=False).update(
            target=models.functions.Cast("user_id", models.CharField()))
    Delivery = apps.get_model("notifications", "Delivery")
    WebhookEndpoint = apps.get_model("channels_app", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.all():
        finished = list(
            Delivery.objects.filter(models.Q(kind="digest") | models.Q(bucket=""),
                                    channel="webhook", endpoint_id=endpoint.pk,
                                    status__in=("delivered", "failed"))
            .order_by("-created_at").values_list("status", "updated_at")[:RECENT])
        if finished:
            endpoint.last_delivery_status, endpoint.last_delivery_at = finished[0]
            endpoint.recent_outcomes = "".join(
                "D" if status == "delivered" else "F" for status, _ in reversed(finished))
            endpoint.save(update_fields=["last_delivery_status", "last_delivery_at",
                                         "recent_outcomes"])


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0008_event_routing_outcome'),
        ('channels_app', '0006_webhook_endpoint_health'),
        ('notifications', '0010_retention'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='decision',
            field=models.CharField(blank=True, help_text="Held or skipped: the policy's decision (e.g. preference_off, muted).", max_length=20),
        ),
        migrations.AddField(
            model_name='delivery',
            name='reason',
            field=models.CharField(blank=True, help_text='Held or skipped: why, in words.', max_length=300),
        ),
        migrations.AddField(
            model_name='delivery',
            name='release_at',
            field=models.DateTimeField(blank=True, help_text='Held: when it goes out.', null=True),
        ),
        migrations.AddField(
            model_name='delivery',
            name='target',
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name='delivery',
            name='target_data',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='digest',
            name='target',
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name='digest',
            name='target_data',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(fill_targets, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='delivery',
            name='address',
        ),
        migrations.RemoveField(
            model_name='delivery',
            name='endpoint_id',
        ),
        migrations.RemoveField(
            model_name='digest',
            name='address',
        ),
        migrations.RemoveField(
            model_name='digest',
            name='endpoint_id',
        ),
        migrations.AlterField(
            model_name='delivery',
            name='channel',
            field=models.CharField(max_length=30),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='next_attempt_at',
            field=models.DateTimeField(blank=True, help_text='When a pending send is due; empty while its channel is not ready.', null=True),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('delivered', 'Delivered'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('expired', 'Expired'), ('held', 'Held'), ('skipped', 'Skipped')], default='pending', max_length=10),
        ),
        migrations.AlterField(
            model_name='digest',
            name='channel',
            field=models.CharField(max_length=30),
        ),
        migrations.AlterField(
            model_name='notificationpreference',
            name='channel',
            field=models.CharField(max_length=30),
        ),
        migrations.AlterField(
            model_name='routingrule',
            name='channels',
            field=models.JSONField(error_messages={'blank': 'Choose at least one channel.', 'null': 'Choose at least one channel.'}, help_text='Any of the installed channels.', validators=[notifications.models.routing.validate_channels]),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['channel', 'target'], name='delivery_target_idx'),
        ),
    ]
