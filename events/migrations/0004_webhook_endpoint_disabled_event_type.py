from django.db import migrations


def sync_catalog(apps, schema_editor):
    """Add system.webhook_endpoint_disabled to an existing catalog (keeps admin choices)."""
    from events.services.catalog import catalog_sync

    catalog_sync(
        category_model=apps.get_model("events", "Category"),
        event_type_model=apps.get_model("events", "EventType"),
    )


class Migration(migrations.Migration):
    dependencies = [("events", "0003_event_failed_status_and_emit_scope")]

    operations = [migrations.RunPython(sync_catalog, migrations.RunPython.noop)]
