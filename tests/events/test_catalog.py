"""The event catalog after migrate, and ``manage.py sync_event_catalog``."""

from io import StringIO

import pytest
from django.core.management import call_command

from events import catalog, emit
from events.models import Category, Event, EventType

# The table of PRODUCT.md ("Event catalog"), written out independently of events/catalog.py.
CATEGORIES = [
    # (slug, name, prefix)
    ("data_sources", "Data Sources", "data_source"),
    ("queries", "Queries", "query"),
    ("users", "Users", "user"),
    ("policies", "Policies", "policy"),
    ("ai_ml", "AI/ML", "ai_ml"),
    ("system", "System", "system"),
]
EVENT_TYPES = {
    "data_source.connection_established": ("data_sources", "info"),
    "data_source.connection_lost": ("data_sources", "critical"),
    "data_source.schema_change": ("data_sources", "info"),
    "data_source.sync_completed": ("data_sources", "info"),
    "query.query_failed": ("queries", "high"),
    "query.query_timeout": ("queries", "high"),
    "query.long_running_query": ("queries", "medium"),
    "user.user_invited": ("users", "info"),
    "user.invitation_accepted": ("users", "info"),
    "user.user_deactivated": ("users", "medium"),
    "user.role_changed": ("users", "medium"),
    "policy.policy_created": ("policies", "low"),
    "policy.violation_detected": ("policies", "critical"),
    "policy.policy_updated": ("policies", "low"),
    "ai_ml.agent_triggered": ("ai_ml", "info"),
    "ai_ml.agent_completed": ("ai_ml", "info"),
    "ai_ml.model_error": ("ai_ml", "high"),
    "ai_ml.embedding_reindex_started": ("ai_ml", "info"),
    "system.scheduled_maintenance": ("system", "medium"),
    "system.platform_update_available": ("system", "low"),
    "system.storage_quota_warning": ("system", "high"),
    "system.webhook_endpoint_disabled": ("system", "high"),  # the platform's own
}


def sync() -> str:
    out = StringIO()
    call_command("sync_event_catalog", stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    """Every stored field of every category and event type."""
    return {
        "categories": list(Category.objects.order_by("pk").values()),
        "event_types": list(EventType.objects.order_by("pk").values()),
    }


# --- after migrate ------------------------------------------------------------------------

def test_migrate_seeds_the_six_categories_in_order(db):
    assert list(Category.objects.values_list("slug", "name", "prefix")) == CATEGORIES


def test_migrate_seeds_the_22_event_types_with_their_default_priorities(db):
    stored = {
        et.key: (et.category.slug, et.default_priority)
        for et in EventType.objects.select_related("category")
    }

    assert len(stored) == 22
    assert stored == EVENT_TYPES


@pytest.mark.parametrize(("key", "priority"), [
    ("data_source.connection_lost", "critical"),
    ("query.query_failed", "high"),
    ("policy.violation_detected", "critical"),
    ("query.long_running_query", "medium"),
    ("system.platform_update_available", "low"),
    ("ai_ml.agent_completed", "info"),
])
def test_examples_from_the_contract(db, key, priority):
    event_type = EventType.objects.get(key=key)

    assert event_type.default_priority == priority
    assert event_type.effective_priority == priority


def test_every_event_type_key_is_category_prefix_dot_name(db):
    for event_type in EventType.objects.select_related("category"):
        assert event_type.key == f"{event_type.category.prefix}.{event_type.name}"


def test_seeded_event_types_start_enabled_without_override_with_texts(db):
    for event_type in EventType.objects.all():
        assert event_type.enabled is True, event_type.key
        assert event_type.priority_override == "", event_type.key
        assert event_type.builtin is True, event_type.key
        assert event_type.label, event_type.key
        assert event_type.description, event_type.key
        assert event_type.title_template, event_type.key


def test_connection_lost_title_template_is_the_contract_example(db):
    event_type = EventType.objects.get(key="data_source.connection_lost")

    assert event_type.title_template == "Connection lost: {{ datasource_name }}"


# --- sync_event_catalog -------------------------------------------------------------------

def test_sync_after_migrate_is_a_no_op(db):
    before = snapshot()

    assert "Event catalog is up to date." in sync()
    assert sync().strip() == "Event catalog is up to date."
    assert snapshot() == before


def test_sync_twice_changes_nothing_the_second_time(db):
    EventType.objects.filter(key="query.query_failed").update(label="Changed")
    EventType.objects.filter(key="query.query_timeout").delete()

    first = sync()
    after_first = snapshot()
    second = sync()

    assert "created query.query_timeout" in first
    assert "updated query.query_failed" in first
    assert "1 created, 1 updated" in first
    assert second.strip() == "Event catalog is up to date."
    assert snapshot() == after_first


def test_sync_keeps_what_an_admin_chose(db):
    EventType.objects.filter(key="data_source.schema_change").update(
        enabled=False, priority_override="high"
    )
    EventType.objects.filter(key="query.query_failed").update(priority_override="low")

    sync()

    schema_change = EventType.objects.get(key="data_source.schema_change")
    assert (schema_change.enabled, schema_change.priority_override) == (False, "high")
    assert schema_change.effective_priority == "high"
    assert EventType.objects.get(key="query.query_failed").priority_override == "low"


def test_sync_keeps_admin_choices_while_restoring_code_owned_texts(db):
    EventType.objects.filter(key="query.query_failed").update(
        enabled=False, priority_override="info", label="Renamed", default_priority="low"
    )

    output = sync()

    event_type = EventType.objects.get(key="query.query_failed")
    assert "updated query.query_failed" in output
    assert (event_type.label, event_type.default_priority) == ("Query failed", "high")
    assert (event_type.enabled, event_type.priority_override) == (False, "info")


def test_sync_restores_code_owned_fields_that_were_changed(db):
    EventType.objects.filter(key="data_source.connection_lost").update(
        label="Something else",
        title_template="Broken {{ x }}",
        description="edited",
        default_priority="info",
    )
    Category.objects.filter(slug="queries").update(name="Renamed queries", position=99)

    output = sync()

    event_type = EventType.objects.get(key="data_source.connection_lost")
    assert event_type.label == "Connection lost"
    assert event_type.title_template == "Connection lost: {{ datasource_name }}"
    assert event_type.description != "edited"
    assert event_type.default_priority == "critical"
    assert list(Category.objects.values_list("slug", "name", "prefix")) == CATEGORIES
    assert "updated data_source.connection_lost" in output
    assert "updated queries" in output


def test_sync_recreates_a_deleted_event_type(db):
    EventType.objects.filter(key="policy.violation_detected").delete()
    assert EventType.objects.count() == 21

    output = sync()

    assert "created policy.violation_detected" in output
    assert EventType.objects.count() == 22
    event_type = EventType.objects.get(key="policy.violation_detected")
    assert (event_type.category.slug, event_type.default_priority) == ("policies", "critical")
    assert event_type.enabled is True


def test_sync_recreates_a_deleted_category_with_its_event_types(db):
    EventType.objects.filter(category__slug="system").delete()
    Category.objects.filter(slug="system").delete()

    output = sync()

    assert "created system" in output
    assert "created system.storage_quota_warning" in output
    assert list(Category.objects.values_list("slug", "name", "prefix")) == CATEGORIES
    assert EventType.objects.filter(category__slug="system").count() == 4


def test_sync_leaves_event_types_added_by_other_apps_alone(db):
    system = Category.objects.get(slug="system")
    custom = EventType.objects.create(
        key="system.backup_failed", category=system, name="backup_failed", label="Backup failed",
        title_template="Backup failed", default_priority="high", enabled=False,
    )

    assert sync().strip() == "Event catalog is up to date."

    custom.refresh_from_db()
    assert (custom.label, custom.enabled, custom.builtin) == ("Backup failed", False, False)
    assert EventType.objects.count() == 23  # the 22 built-ins and this one


def test_sync_keeps_the_event_log(db):
    event_type = EventType.objects.get(key="query.query_failed")
    event = Event.objects.create(event_type=event_type, priority="high",
                                 occurred_at="2024-01-01T00:00:00Z")
    EventType.objects.filter(pk=event_type.pk).update(label="Changed")

    sync()

    assert Event.objects.get(pk=event.pk).event_type_id == event_type.pk
    assert EventType.objects.get(pk=event_type.pk).label == "Query failed"


@pytest.fixture
def restore_catalog():
    registered = list(catalog.EVENT_TYPES)
    yield
    catalog.EVENT_TYPES[:] = registered


def test_another_app_registers_an_event_type_that_sync_writes_and_emit_accepts(
    db, restore_catalog
):
    catalog.register_event_type(
        category="system", name="backup_failed", label="Backup failed", priority="high",
        title_template="Backup failed: {{ target }}", description="A nightly backup failed.",
    )

    call_command("sync_event_catalog", stdout=StringIO())
    event = emit("system.backup_failed", payload={"target": "warehouse"})

    backup = EventType.objects.get(key="system.backup_failed")
    assert (backup.category.slug, backup.effective_priority, backup.builtin) == (
        "system", "high", True)
    assert event.priority == "high"


@pytest.mark.parametrize("kwargs, message", [
    ({"category": "billing"}, "unknown category 'billing'"),
    ({"priority": "urgent"}, "unknown priority 'urgent'"),
    ({"name": "Backup Failed"}, "must be a lowercase identifier"),
    ({"name": "connection_lost", "category": "data_sources"}, "registered already"),
])
def test_registering_a_bad_event_type_names_the_problem(restore_catalog, kwargs, message):
    arguments = {"category": "system", "name": "backup_failed", "label": "Backup failed",
                 "priority": "high", "title_template": "Backup failed"} | kwargs

    with pytest.raises(ValueError, match=message):
        catalog.register_event_type(**arguments)
    assert len(catalog.EVENT_TYPES) == 22


def contrast_with_white(color: str) -> float:
    """WCAG 2's contrast ratio of ``#rrggbb`` with white."""
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(int(color[i:i + 2], 16)) for i in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return 1.05 / (luminance + 0.05)


@pytest.mark.parametrize("priority", catalog.Priority.VALUES)
def test_every_priority_color_reads_with_white_and_on_white(priority):
    """WCAG 2 AA (4.5:1) both ways: white text on a badge, the color as text in an email."""
    assert contrast_with_white(catalog.Priority.BADGE_COLORS[priority]) >= 4.5
