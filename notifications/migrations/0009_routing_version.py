"""The routing version row and the triggers that change its token with every change to the
configuration routing caches (see ``notifications.models.RoutingVersion``): routing rules,
digest switches, and webhook endpoints (creation, deletion, and a change of the fields that
decide who receives: ``is_active``, ``categories``, ``event_types``, ``workspace_id``; the
failure counters a send updates leave the token alone)."""

from django.db import migrations, models

TOKEN_PG = "md5(random()::text || clock_timestamp()::text)"
TOKEN_SQLITE = "lower(hex(randomblob(16)))"
WHOLE_TABLES = ("notifications_routingrule", "channels_app_digestsetting")
ENDPOINTS = "channels_app_webhookendpoint"
ENDPOINT_FIELDS = ("is_active", "categories", "event_types", "workspace_id")

POSTGRESQL = [
    f"""
    CREATE FUNCTION notifications_routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO notifications_routingversion (id, token) VALUES (1, {TOKEN_PG})
        ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
        RETURN NULL;
    END $$
    """,
    *(f"""
    CREATE TRIGGER {table}_routing_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_routing_changed()
    """ for table in WHOLE_TABLES),
    f"""
    CREATE TRIGGER {ENDPOINTS}_routing_changed
    AFTER INSERT OR DELETE OR TRUNCATE ON {ENDPOINTS}
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_routing_changed()
    """,
    f"""
    CREATE TRIGGER {ENDPOINTS}_routing_updated
    AFTER UPDATE ON {ENDPOINTS} FOR EACH ROW
    WHEN ({" OR ".join(f"OLD.{f} IS DISTINCT FROM NEW.{f}" for f in ENDPOINT_FIELDS)})
    EXECUTE FUNCTION notifications_routing_changed()
    """,
]
POSTGRESQL_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS {table}_routing_changed ON {table}"
      for table in (*WHOLE_TABLES, ENDPOINTS)),
    f"DROP TRIGGER IF EXISTS {ENDPOINTS}_routing_updated ON {ENDPOINTS}",
    "DROP FUNCTION IF EXISTS notifications_routing_changed()",
]
_SQLITE_BUMP = (f"INSERT OR REPLACE INTO notifications_routingversion (id, token) "
                f"VALUES (1, {TOKEN_SQLITE});")
SQLITE_TRIGGERS = [
    *((f"{table}_routing_{operation.lower()}", f"AFTER {operation} ON {table}")
      for table in WHOLE_TABLES for operation in ("INSERT", "UPDATE", "DELETE")),
    *((f"{ENDPOINTS}_routing_{operation.lower()}", f"AFTER {operation} ON {ENDPOINTS}")
      for operation in ("INSERT", "DELETE")),
    (f"{ENDPOINTS}_routing_update",
     f"AFTER UPDATE ON {ENDPOINTS} FOR EACH ROW WHEN "
     + " OR ".join(f"OLD.{f} IS NOT NEW.{f}" for f in ENDPOINT_FIELDS)),
]
SQLITE = [f"CREATE TRIGGER {name} {when} BEGIN {_SQLITE_BUMP} END"
          for name, when in SQLITE_TRIGGERS]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {name}" for name, _ in SQLITE_TRIGGERS]


def create_triggers(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(schema_editor.connection.vendor)
    for statement in statements or ():  # another database: routing simply never caches
        schema_editor.execute(statement)
    apps.get_model("notifications", "RoutingVersion").objects.update_or_create(
        id=1, defaults={"token": "initial"})


def drop_triggers(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL_REVERSE,
                  "sqlite": SQLITE_REVERSE}.get(schema_editor.connection.vendor)
    for statement in statements or ():
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0008_notification_autovacuum"),
        ("channels_app", "0004_webhook_endpoint"),
    ]

    operations = [
        migrations.CreateModel(
            name="RoutingVersion",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False,
                                                        primary_key=True, serialize=False)),
                ("token", models.CharField(max_length=64)),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
