"""SQLite drops a table's triggers when a migration rebuilds the table, as the changes to
webhook endpoints (channels_app 0005, 0006) and routing rules (0011) did: the routing
version triggers of 0009 are created again. PostgreSQL alters tables in place and keeps
them."""

import importlib

from django.db import migrations

ROUTING = importlib.import_module("notifications.migrations.0009_routing_version")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in (*ROUTING.SQLITE_REVERSE, *ROUTING.SQLITE):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0012_attention_controls"),
        ("channels_app", "0006_webhook_endpoint_health"),
    ]

    operations = [migrations.RunPython(restore, migrations.RunPython.noop)]
