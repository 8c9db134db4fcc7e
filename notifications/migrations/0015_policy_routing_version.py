"""Silences and inhibit rules change the routing version token too, as routing rules do
(migration 0009): their policies read them once per version instead of once per route
(``RoutingConfig.remembered``)."""

import importlib

from django.db import migrations

ROUTING = importlib.import_module("notifications.migrations.0009_routing_version")
TABLES = ("notifications_silence", "notifications_inhibitrule")

POSTGRESQL = [f"""
    CREATE TRIGGER {table}_routing_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_routing_changed()
    """ for table in TABLES]
POSTGRESQL_REVERSE = [f"DROP TRIGGER IF EXISTS {table}_routing_changed ON {table}"
                      for table in TABLES]
SQLITE_TRIGGERS = [(f"{table}_routing_{operation.lower()}", f"AFTER {operation} ON {table}")
                   for table in TABLES for operation in ("INSERT", "UPDATE", "DELETE")]
SQLITE = [f"CREATE TRIGGER {name} {when} BEGIN {ROUTING._SQLITE_BUMP} END"
          for name, when in SQLITE_TRIGGERS]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {name}" for name, _ in SQLITE_TRIGGERS]


def create_triggers(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(schema_editor.connection.vendor)
    for statement in statements or ():  # another database: routing simply never caches
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL_REVERSE,
                  "sqlite": SQLITE_REVERSE}.get(schema_editor.connection.vendor)
    for statement in statements or ():
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0014_incidents")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
