"""Silences and inhibit rules change the routing version token too, as routing rules do
(migration 0009): their policies read them once per version instead of once per route
(``RoutingConfig.remembered``)."""

import importlib

from django.db import migrations

from core.migration_sql import run_sql_by_vendor

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


class Migration(migrations.Migration):
    dependencies = [("notifications", "0014_incidents")]

    # Another database: routing simply never caches.
    operations = [run_sql_by_vendor({"postgresql": POSTGRESQL, "sqlite": SQLITE},
                                    {"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE})]
