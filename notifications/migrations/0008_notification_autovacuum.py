"""Vacuum the notifications table early (PostgreSQL).

Marking notifications read rewrites rows out of the partial unread index; the dead entries
stay in that small index until a vacuum, and with the default thresholds (20% of a table of
millions of rows) that is rarely, so the unread count scanned mostly dead entries. Vacuum
after 1% (at least 1,000 rows) changed instead.
"""

from django.db import migrations

SETTINGS = ("autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, "
            "autovacuum_analyze_scale_factor = 0.02")


def set_autovacuum(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE notifications_notification SET ({SETTINGS})")


def reset_autovacuum(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE notifications_notification RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor)")


class Migration(migrations.Migration):
    dependencies = [("notifications", "0007_notification_preferences_and_updated_at")]

    operations = [migrations.RunPython(set_autovacuum, reset_autovacuum)]
