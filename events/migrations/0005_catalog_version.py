"""The catalog version row and the triggers that change its token with every change to
event types (see ``events.models.CatalogVersion``)."""

from django.db import migrations, models

POSTGRESQL = [
    """
    CREATE FUNCTION events_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO events_catalogversion (id, token)
        VALUES (1, md5(random()::text || clock_timestamp()::text))
        ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER events_eventtype_catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON events_eventtype
    FOR EACH STATEMENT EXECUTE FUNCTION events_catalog_changed()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS events_eventtype_catalog_changed ON events_eventtype",
    "DROP FUNCTION IF EXISTS events_catalog_changed()",
]
SQLITE = [
    f"""
    CREATE TRIGGER events_eventtype_catalog_{operation.lower()}
    AFTER {operation} ON events_eventtype
    BEGIN
        INSERT OR REPLACE INTO events_catalogversion (id, token)
        VALUES (1, lower(hex(randomblob(16))));
    END
    """
    for operation in ("INSERT", "UPDATE", "DELETE")
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS events_eventtype_catalog_{operation}"
                  for operation in ("insert", "update", "delete")]


def create_triggers(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(schema_editor.connection.vendor)
    for statement in statements or ():  # another database: emit() simply never caches
        schema_editor.execute(statement)
    apps.get_model("events", "CatalogVersion").objects.update_or_create(
        id=1, defaults={"token": "initial"})


def drop_triggers(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL_REVERSE,
                  "sqlite": SQLITE_REVERSE}.get(schema_editor.connection.vendor)
    for statement in statements or ():
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("events", "0004_webhook_endpoint_disabled_event_type")]

    operations = [
        migrations.CreateModel(
            name="CatalogVersion",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False,
                                                        primary_key=True, serialize=False)),
                ("token", models.CharField(max_length=64)),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
