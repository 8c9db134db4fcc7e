from django.db import migrations


def seed_catalog(apps, schema_editor):
    from events.services.catalog import catalog_sync

    catalog_sync(
        category_model=apps.get_model("events", "Category"),
        event_type_model=apps.get_model("events", "EventType"),
    )


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunPython(seed_catalog, migrations.RunPython.noop)]
