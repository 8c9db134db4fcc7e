"""SQLite drops a table's triggers when a migration rebuilds the table, as adding the
grouping fields to ``events_eventtype`` did (0009): the catalog version triggers of 0005 are
created again. PostgreSQL alters tables in place and keeps them."""

import importlib

from django.db import migrations

CATALOG = importlib.import_module("events.migrations.0005_catalog_version")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in (*CATALOG.SQLITE_REVERSE, *CATALOG.SQLITE):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("events", "0009_attention_controls")]

    operations = [migrations.RunPython(restore, migrations.RunPython.noop)]
