"""SQLite drops a table's triggers when a migration rebuilds the table (adding a column
with a default does), and the cache versions (the catalog's, the routing configuration's)
are kept by triggers. After every ``migrate`` each app that owns such triggers creates them
again (``post_migrate``), so no migration has to remember to. PostgreSQL alters tables in
place and keeps them."""

import importlib

from django.db import connections


def restorer(migration: str, version_table: str):
    """A ``post_migrate`` receiver that (re)creates the SQLite triggers of ``migration`` (a
    module with ``SQLITE`` and ``SQLITE_REVERSE``), once ``version_table`` exists."""

    def restore(sender, using="default", **kwargs):
        connection = connections[using]
        if connection.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            if version_table not in connection.introspection.table_names(cursor):
                return  # migrated to before the triggers
            module = importlib.import_module(migration)
            for statement in (*module.SQLITE_REVERSE, *module.SQLITE):
                cursor.execute(statement)

    return restore
