"""Administration > Events, as an admin clicks through it with a browser session."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events import emit
from events.models import Category, Event, EventType, Membership, Workspace
from notifications.models import RoutingRule

CHANGELIST = "/admin/events/eventtype/"
BADGE_COLORS = {
    "critical": "#dc2626",
    "high": "#c2410c",
    "medium": "#a16207",
    "low": "#2563eb",
    "info": "#6b7280",
}


@pytest.fixture
def admin_client(db, client):
    root = get_user_model().objects.create(
        username="root", email="root@example.com", password="!", is_staff=True,
        is_superuser=True,
    )
    client.force_login(root)
    return client


def listed_keys(response) -> list[str]:
    return [str(obj) for obj in response.context["cl"].result_list]


def row(html: str, key: str) -> str:
    """The changelist table row whose link text is ``key``."""
    rows = [r for r in html.split("<tr")[1:] if f">{key}</a>" in r]
    assert len(rows) == 1, f"{key} is listed {len(rows)} times"
    return rows[0].split("</tr>")[0]


def badge(row_html: str) -> str:
    """The priority of the row's badge (its color comes from /priority-colors.css)."""
    match = re.search(r'<span class="priority-badge" data-priority="(\w+)">\1</span>', row_html)
    assert match, row_html
    return match.group(1)


def stylesheet_colors(client) -> dict[str, str]:
    """priority -> color, as /priority-colors.css gives them to a data-priority badge."""
    css = client.get("/priority-colors.css").content.decode()
    return dict(re.findall(r'\[data-priority="(\w+)"\] \{ --priority-color: (#[0-9a-f]{6}); \}',
                           css))


# --- the event type changelist ------------------------------------------------------------

def test_admin_index_has_an_events_section(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    html = response.content.decode()
    assert ">Events<" in html
    assert 'href="/admin/events/eventtype/"' in html


def test_changelist_lists_the_whole_catalog(admin_client):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert sorted(listed_keys(response)) == sorted(
        EventType.objects.values_list("key", flat=True)
    )
    assert len(listed_keys(response)) == 22
    html = response.content.decode()
    for key in ("data_source.connection_lost", "query.query_failed", "policy.policy_created"):
        assert f">{key}</a>" in html


def test_filter_by_category_shows_only_that_category(admin_client):
    queries = Category.objects.get(slug="queries")

    response = admin_client.get(CHANGELIST, {"category__id__exact": queries.pk})

    assert response.status_code == 200
    assert sorted(listed_keys(response)) == [
        "query.long_running_query", "query.query_failed", "query.query_timeout"
    ]
    html = response.content.decode()
    assert ">query.query_failed</a>" in html
    assert ">data_source.connection_lost</a>" not in html


def test_filter_by_enabled(admin_client):
    EventType.objects.filter(key__in=["user.role_changed", "ai_ml.agent_triggered"]).update(
        enabled=False
    )

    response = admin_client.get(CHANGELIST, {"enabled__exact": "0"})

    assert sorted(listed_keys(response)) == ["ai_ml.agent_triggered", "user.role_changed"]


@pytest.mark.parametrize(("term", "keys"), [
    ("timeout", ["query.query_timeout"]),
    ("violation", ["policy.violation_detected"]),
    ("Connection", ["data_source.connection_established", "data_source.connection_lost"]),
    ("no-such-event", []),
])
def test_search(admin_client, term, keys):
    response = admin_client.get(CHANGELIST, {"q": term})

    assert response.status_code == 200
    assert sorted(listed_keys(response)) == keys


@pytest.mark.parametrize(("key", "priority"), [
    ("data_source.connection_lost", "critical"),
    ("query.query_failed", "high"),
    ("query.long_running_query", "medium"),
    ("policy.policy_created", "low"),
    ("ai_ml.agent_triggered", "info"),
])
def test_priority_badge_has_the_priority_color(admin_client, key, priority):
    html = admin_client.get(CHANGELIST).content.decode()

    assert badge(row(html, key)) == priority
    assert '<link rel="stylesheet" href="/priority-colors.css">' in html
    assert stylesheet_colors(admin_client)[priority] == BADGE_COLORS[priority]
    assert "style=" not in row(html, key)  # the CSP refuses style attributes


def test_badge_shows_the_effective_priority(admin_client):
    EventType.objects.filter(key="query.query_failed").update(priority_override="low")
    EventType.objects.filter(key="user.user_invited").update(priority_override="critical")

    html = admin_client.get(CHANGELIST).content.decode()

    assert badge(row(html, "query.query_failed")) == "low"
    assert badge(row(html, "user.user_invited")) == "critical"


def test_effective_channels_show_channels_and_where_they_come_from(admin_client):
    RoutingRule.objects.create(event_type=EventType.objects.get(key="query.query_failed"),
                               channels=["webhook"])
    RoutingRule.objects.create(category=Category.objects.get(slug="users"),
                               channels=["in_app", "email"])

    html = admin_client.get(CHANGELIST).content.decode()

    lost = row(html, "data_source.connection_lost")
    assert "in_app, email, webhook" in lost
    assert "(priority default)" in lost
    failed = row(html, "query.query_failed")
    assert "webhook" in failed and "in_app" not in failed.split("priority-badge")[1]
    assert "(event type rule)" in failed
    invited = row(html, "user.user_invited")
    assert "in_app, email" in invited
    assert "(category rule)" in invited
    timeout = row(html, "query.query_timeout")
    assert "in_app, email" in timeout and "(priority default)" in timeout


def test_changelist_query_count_does_not_grow_with_rows_or_routing_rules(admin_client):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(queries.captured_queries)

    count()  # warm up (content types, permissions)
    before = count()
    system = Category.objects.get(slug="system")
    EventType.objects.bulk_create(
        EventType(key=f"system.custom_{i}", category=system, name=f"custom_{i}",
                  label=f"Custom {i}", title_template="Custom", default_priority="info")
        for i in range(15)
    )
    for category in Category.objects.all():
        RoutingRule.objects.create(category=category, channels=["in_app"])
    for event_type in EventType.objects.all()[:20]:
        RoutingRule.objects.create(event_type=event_type, channels=["email"])

    after = count()

    assert len(admin_client.get(CHANGELIST).context["cl"].result_list) == 37  # 22 + 15
    assert after == before


# --- editing in the list: one Save for every row ------------------------------------------

def changelist_form_data(response) -> dict:
    """The changelist form exactly as the browser would post it back, unchanged."""
    formset = response.context["cl"].formset
    data = {
        "form-TOTAL_FORMS": str(formset.total_form_count()),
        "form-INITIAL_FORMS": str(formset.initial_form_count()),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    keys = {}
    for i, form in enumerate(formset.forms):
        event_type = form.instance
        keys[event_type.key] = i
        data[f"form-{i}-id"] = str(event_type.pk)
        data[f"form-{i}-priority_override"] = event_type.priority_override
        if event_type.enabled:
            data[f"form-{i}-enabled"] = "on"
    data["keys"] = keys
    return data


def test_one_save_changes_several_rows_at_once(admin_client):
    data = changelist_form_data(admin_client.get(CHANGELIST))
    keys = data.pop("keys")
    assert len(keys) == 22
    data.pop(f"form-{keys['data_source.schema_change']}-enabled")
    data.pop(f"form-{keys['ai_ml.agent_triggered']}-enabled")
    data[f"form-{keys['query.query_failed']}-priority_override"] = "critical"
    data[f"form-{keys['system.platform_update_available']}-priority_override"] = "medium"

    response = admin_client.post(CHANGELIST, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    state = {et.key: (et.enabled, et.priority_override) for et in EventType.objects.all()}
    assert state["data_source.schema_change"] == (False, "")
    assert state["ai_ml.agent_triggered"] == (False, "")
    assert state["query.query_failed"] == (True, "critical")
    assert state["system.platform_update_available"] == (True, "medium")
    changed = {"data_source.schema_change", "ai_ml.agent_triggered", "query.query_failed",
               "system.platform_update_available"}
    assert all(value == (True, "") for key, value in state.items() if key not in changed)

    page = admin_client.get(CHANGELIST).content.decode()
    assert badge(row(page, "query.query_failed")) == "critical"
    assert badge(row(page, "system.platform_update_available")) == "medium"


def test_save_can_clear_an_override_and_re_enable(admin_client):
    EventType.objects.filter(key="query.query_failed").update(
        priority_override="info", enabled=False
    )
    data = changelist_form_data(admin_client.get(CHANGELIST))
    keys = data.pop("keys")
    i = keys["query.query_failed"]
    data[f"form-{i}-priority_override"] = ""
    data[f"form-{i}-enabled"] = "on"

    assert admin_client.post(CHANGELIST, data).status_code == 302

    event_type = EventType.objects.get(key="query.query_failed")
    assert (event_type.enabled, event_type.priority_override) == (True, "")
    assert event_type.effective_priority == "high"


def test_an_invalid_row_saves_nothing_and_says_why(admin_client):
    data = changelist_form_data(admin_client.get(CHANGELIST))
    keys = data.pop("keys")
    data.pop(f"form-{keys['data_source.schema_change']}-enabled")
    data[f"form-{keys['query.query_failed']}-priority_override"] = "urgent"

    response = admin_client.post(CHANGELIST, data)

    assert response.status_code == 200
    assert "urgent is not one of the available choices" in response.content.decode()
    assert EventType.objects.get(key="data_source.schema_change").enabled is True
    assert EventType.objects.get(key="query.query_failed").priority_override == ""


def test_a_saved_override_is_what_the_next_emit_uses(admin_client):
    data = changelist_form_data(admin_client.get(CHANGELIST))
    keys = data.pop("keys")
    data[f"form-{keys['query.query_timeout']}-priority_override"] = "low"
    data.pop(f"form-{keys['user.user_invited']}-enabled")
    assert admin_client.post(CHANGELIST, data).status_code == 302

    assert emit("query.query_timeout").priority == "low"
    assert emit("user.user_invited").status == Event.Status.SUPPRESSED


def test_event_type_change_page_renders_builtin_texts_read_only(admin_client):
    event_type = EventType.objects.get(key="data_source.connection_lost")

    response = admin_client.get(f"{CHANGELIST}{event_type.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Connection lost: {{ datasource_name }}" in html
    assert 'name="enabled"' in html
    assert 'name="priority_override"' in html
    assert 'name="label"' not in html


# --- workspaces and the event log ---------------------------------------------------------

def test_workspace_add_page_has_members_inline(admin_client):
    response = admin_client.get("/admin/events/workspace/add/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="memberships-TOTAL_FORMS"' in html
    assert 'name="memberships-0-user"' in html
    assert 'name="memberships-0-role"' in html


def test_workspace_is_created_with_its_members(admin_client):
    member = get_user_model().objects.create(username="bob", password="!")

    response = admin_client.post("/admin/events/workspace/add/", {
        "name": "Finance",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": str(member.pk),
        "memberships-0-role": "admin",
        "_save": "Save",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    workspace = Workspace.objects.get(name="Finance")
    assert workspace.public_id.startswith("ws_")
    assert list(Membership.objects.filter(workspace=workspace).values_list("user", "role")) == [
        (member.pk, "admin")
    ]


def test_event_log_lists_emitted_events(admin_client):
    workspace = Workspace.objects.create(name="Ops")
    EventType.objects.filter(key="user.user_invited").update(enabled=False)
    lost = emit("data_source.connection_lost", workspace=workspace, dedupe_key="ds-1")
    invited = emit("user.user_invited")

    response = admin_client.get("/admin/events/event/")

    assert response.status_code == 200
    assert {e.pk for e in response.context["cl"].result_list} == {lost.pk, invited.pk}
    html = response.content.decode()
    assert workspace.public_id in html
    assert "ds-1" in html
    assert '<span class="priority-badge" data-priority="critical">critical</span>' in html

    suppressed = admin_client.get("/admin/events/event/", {"status__exact": "suppressed"})
    assert [e.pk for e in suppressed.context["cl"].result_list] == [invited.pk]


def test_event_detail_is_read_only(admin_client):
    event = emit("query.query_failed", payload={"query_name": "daily revenue"})

    response = admin_client.get(f"/admin/events/event/{event.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "daily revenue" in html
    assert 'name="_save"' not in html
    assert admin_client.get("/admin/events/event/add/").status_code == 403


def test_api_tokens_are_not_listed_back_in_the_admin(client, staff):
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=staff)
    client.force_login(staff)

    index = client.get("/admin/").content.decode()
    tokens = client.get("/admin/authtoken/tokenproxy/")

    assert "authtoken" not in index
    assert tokens.status_code == 404


def test_admin_adds_an_event_type_whose_key_comes_from_category_and_name(admin_client):
    system = Category.objects.get(slug="system")
    form = {"category": system.pk, "name": "backup_failed", "label": "Backup failed",
            "title_template": "Backup failed: {{ target }}", "default_priority": "high",
            "priority_override": "", "enabled": "on", "description": ""}

    created = admin_client.post("/admin/events/eventtype/add/", form)
    again = admin_client.post("/admin/events/eventtype/add/", form)
    event = emit("system.backup_failed", payload={"target": "warehouse"})

    assert created.status_code == 302
    assert again.status_code == 200  # the form again, with the error, not a crash
    assert "already exists" in again.content.decode()
    assert EventType.objects.filter(key="system.backup_failed").count() == 1
    assert event.priority == "high"


def test_admin_refuses_a_title_template_that_does_not_compile(admin_client):
    system = Category.objects.get(slug="system")

    response = admin_client.post("/admin/events/eventtype/add/", {
        "category": system.pk, "name": "backup_failed", "label": "Backup failed",
        "title_template": "Backup failed: {% if %}", "default_priority": "high",
        "priority_override": "", "enabled": "on", "description": "",
    })

    assert response.status_code == 200
    assert "Not a valid template" in response.content.decode()
    assert not EventType.objects.filter(name="backup_failed").exists()


def test_admin_refuses_a_label_or_workspace_name_of_more_than_one_line(admin_client):
    system = Category.objects.get(slug="system")

    label = admin_client.post("/admin/events/eventtype/add/", {
        "category": system.pk, "name": "backup_failed", "label": "Backup\r\nBcc: x@y.z",
        "title_template": "Backup failed", "default_priority": "high",
        "priority_override": "", "enabled": "on", "description": ""})
    name = admin_client.post("/admin/events/workspace/add/", {
        "name": "Fin\nance", "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "_save": "Save"})

    for response, field in ((label, "label"), (name, "name")):
        assert response.status_code == 200
        assert list(response.context["adminform"].form.errors) == [field]
    assert not EventType.objects.filter(name="backup_failed").exists()
    assert not Workspace.objects.exists()


def test_a_disabled_event_type_shows_no_channels(admin_client):
    EventType.objects.filter(key="query.query_failed").update(enabled=False)

    html = admin_client.get(CHANGELIST).content.decode()

    assert "notifications disabled" in row(html, "query.query_failed")
    assert "notifications disabled" not in row(html, "query.query_timeout")
