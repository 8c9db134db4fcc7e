"""Routing in the Django admin: Import/Export YAML on the routing rules list, the add form's
validation, and the effective channels shown in the event catalog."""

import html
import re

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events.models import Category, EventType
from events.services.catalog import event_type_update
from notifications.models import RoutingRule
from notifications.routing.files import routing_export, routing_import
from notifications.routing.rules import routing_get
from notifications.services.rules import routing_rule_set
from tests.notifications.test_routing_files import RICH, SEED, SEED_OVERRIDES, SEED_RULES

CHANGELIST = "/admin/notifications/routingrule/"
IMPORT = "/admin/notifications/routingrule/import/"
EXPORT = "/admin/notifications/routingrule/export/"
ADD = "/admin/notifications/routingrule/add/"
EVENT_TYPES = "/admin/events/eventtype/"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def state() -> tuple:
    rules = sorted(
        (r.category_id or 0, r.event_type_id or 0, tuple(r.channels), tuple(r.extra_emails))
        for r in RoutingRule.objects.all()
    )
    overrides = sorted(
        EventType.objects.exclude(priority_override="").values_list("key", "priority_override")
    )
    return rules, overrides


def event_rule_channels() -> dict:
    return {r.event_type.key: r.channels
            for r in RoutingRule.objects.filter(event_type__isnull=False)}


def upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("routing.yaml", text.encode(), content_type="application/yaml")


# --- Import / Export YAML -----------------------------------------------------------------

def test_changelist_links_to_import_and_export(admin_client):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    text = response.content.decode()
    assert f'<a href="{IMPORT}">Import YAML</a>' in text
    assert f'<a href="{EXPORT}">Export YAML</a>' in text
    assert reverse("admin:notifications_routingrule_import") == IMPORT
    assert reverse("admin:notifications_routingrule_export") == EXPORT


def test_export_downloads_the_routing_yaml(admin_client):
    routing_import(SEED)

    response = admin_client.get(EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert "attachment" in response["Content-Disposition"]
    assert response["Content-Disposition"].endswith('filename="routing.yaml"')
    text = response.content.decode()
    assert text == routing_export()
    assert text.split("\n", 1)[1] == SEED.split("\n", 1)[1]


def test_import_page_shows_the_upload_form(admin_client):
    response = admin_client.get(IMPORT)

    assert response.status_code == 200
    text = response.content.decode()
    assert 'type="file"' in text
    assert 'name="replace"' in text


def test_import_upload_of_the_seed_applies_it(admin_client):
    response = admin_client.post(IMPORT, {"file": upload(SEED)}, follow=True)

    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert "Routing imported: 4 rules and 4 priority overrides changed, 0 removed." in (
        page_text(response))
    assert event_rule_channels() == SEED_RULES
    assert dict(state()[1]) == SEED_OVERRIDES
    # The list now shows the imported rules.
    assert "data_source.connection_lost -&gt; in_app, email, webhook" in (
        response.content.decode())


def test_import_upload_with_replace_removes_what_the_file_omits(admin_client):
    routing_import(RICH)

    response = admin_client.post(IMPORT, {"file": upload(SEED), "replace": "on"})

    assert response.status_code == 302
    assert event_rule_channels() == SEED_RULES
    assert not RoutingRule.objects.filter(category__isnull=False).exists()


def test_exported_file_uploaded_again_changes_nothing(admin_client):
    routing_import(RICH)
    before = state()
    exported = admin_client.get(EXPORT).content.decode()

    response = admin_client.post(IMPORT, {"file": upload(exported), "replace": "on"})

    assert response.status_code == 302
    assert state() == before
    assert admin_client.get(EXPORT).content.decode() == exported


@pytest.mark.parametrize(("text", "path"), [
    ("routing:\n  queries:\n    query_failed:\n      channels: [in_app, sms]\n",
     "routing.queries.query_failed.channels[1]"),
    ("routing:\n  queries:\n    query_faild:\n      channels: [in_app]\n",
     "routing.queries.query_faild"),
    ("routing:\n  datasources:\n    connection_lost:\n      priority: high\n",
     "routing.datasources"),
    (SEED.replace("priority: high", "priority: urgent"), "routing.queries.query_failed.priority"),
], ids=["unknown-channel", "unknown-event", "unknown-category", "seed-with-a-bad-priority"])
def test_import_upload_of_a_bad_file_shows_the_key_path_and_changes_nothing(
    admin_client, text, path
):
    routing_import(RICH)
    before = state()

    response = admin_client.post(IMPORT, {"file": upload(text), "replace": "on"})

    assert response.status_code == 200
    errors = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>',
                        page_text(response), re.S)
    assert len(errors) == 1
    assert path in errors[0]
    assert "Nothing was changed." in errors[0]
    assert state() == before


def test_import_upload_of_a_non_utf8_file_is_refused(admin_client):
    response = admin_client.post(IMPORT, {"file": SimpleUploadedFile(
        "routing.yaml", b"\xff\xfe routing", content_type="application/yaml")})

    assert response.status_code == 200
    assert "UTF-8" in page_text(response)
    assert not RoutingRule.objects.exists()


@pytest.fixture
def viewer_client(client, make_user):
    """Staff who may only view routing rules."""
    viewer = make_user("viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_routingrule"))
    client.force_login(viewer)
    return client


@pytest.fixture
def unprivileged_client(client, make_user):
    client.force_login(make_user("intern", staff=True))
    return client


def test_staff_who_may_only_view_cannot_import(viewer_client):
    assert viewer_client.get(EXPORT).status_code == 200

    response = viewer_client.post(IMPORT, {"file": upload(SEED)})

    assert response.status_code == 403
    assert not RoutingRule.objects.exists()


def test_staff_without_routing_permissions_can_neither_import_nor_export(unprivileged_client):
    routing_import(SEED)

    assert unprivileged_client.get(EXPORT).status_code == 403
    assert unprivileged_client.post(IMPORT, {"file": upload(RICH)}).status_code == 403
    assert event_rule_channels() == SEED_RULES


def test_anonymous_users_are_sent_to_the_login_page(client):
    for url in (IMPORT, EXPORT):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


# --- the add form -------------------------------------------------------------------------

def form_errors(response) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", " ", block)).strip()
            for block in re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>',
                                    response.content.decode(), re.S)]


def test_add_form_creates_a_rule_that_routing_follows(admin_client):
    failed = EventType.objects.get(key="query.query_failed")

    response = admin_client.post(ADD, {"event_type": failed.pk, "channels": ["email"],
                                       "extra_emails": "oncall@example.com\nops@example.com"})

    assert response.status_code == 302, form_errors(response)
    rule = RoutingRule.objects.get()
    assert rule.extra_emails == ["oncall@example.com", "ops@example.com"]
    routing = routing_get(failed)
    assert (routing.channels, routing.source_label) == (["email"], "event type rule")


@pytest.mark.parametrize(("data", "message"), [
    ({"channels": ["in_app", "sms"]}, "sms is not one of the available choices"),
    ({}, "Choose at least one channel."),
    ({"channels": ["email"], "extra_emails": "not-an-address"}, "not a valid email address"),
], ids=["unknown-channel", "no-channel", "bad-extra-email"])
def test_add_form_refuses_bad_channels(admin_client, data, message):
    failed = EventType.objects.get(key="query.query_failed")

    response = admin_client.post(ADD, {"event_type": failed.pk, **data})

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert not RoutingRule.objects.exists()


@pytest.mark.parametrize("targets", ["both", "neither"])
def test_add_form_needs_exactly_one_target(admin_client, targets):
    data = {"channels": ["email"]}
    if targets == "both":
        data["event_type"] = EventType.objects.get(key="query.query_failed").pk
        data["category"] = Category.objects.get(slug="queries").pk

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert any("exactly one target: a category or an event type" in error
               for error in form_errors(response)), form_errors(response)
    assert not RoutingRule.objects.exists()


# --- effective channels in the event catalog ----------------------------------------------

def effective_channels(response) -> dict[str, str]:
    """Event type key -> the text of its "Effective channels" cell."""
    cells = {}
    for row in re.findall(r"<tr.*?</tr>", response.content.decode(), re.S):
        cell = re.search(r'<td class="field-effective_channels">(.*?)</td>', row, re.S)
        key = re.search(r'<th class="field-key"><a [^>]*>([^<]+)</a>', row)
        if cell and key:
            text = html.unescape(re.sub(r"<[^>]+>", "", cell.group(1)))
            cells[key.group(1)] = " ".join(text.split())
    return cells


def test_event_type_list_shows_priority_defaults_without_rules(admin_client):
    response = admin_client.get(EVENT_TYPES)

    assert response.status_code == 200
    cells = effective_channels(response)
    assert len(cells) == EventType.objects.count()
    assert cells["data_source.connection_lost"] == "in_app, email, webhook (priority default)"
    assert cells["query.query_failed"] == "in_app, email (priority default)"
    assert cells["query.long_running_query"] == "in_app (priority default)"
    assert all(text.endswith("(priority default)") for text in cells.values())


def test_event_type_list_shows_imported_rules_and_their_source(admin_client):
    routing_import(SEED)
    routing_rule_set(category=Category.objects.get(slug="queries"), channels=["webhook"])

    cells = effective_channels(admin_client.get(EVENT_TYPES))

    assert cells["data_source.connection_lost"] == "in_app, email, webhook (event type rule)"
    assert cells["data_source.schema_change"] == "in_app (event type rule)"
    assert cells["query.query_failed"] == "in_app, email (event type rule)"
    assert cells["query.query_timeout"] == "webhook (category rule)"
    assert cells["query.long_running_query"] == "webhook (category rule)"
    assert cells["user.user_invited"] == "in_app (priority default)"


def test_event_type_list_follows_a_priority_override(admin_client):
    event_type_update(event_type=EventType.objects.get(key="query.long_running_query"),
                      priority_override="critical")

    cells = effective_channels(admin_client.get(EVENT_TYPES))

    assert cells["query.long_running_query"] == "in_app, email, webhook (priority default)"


def test_event_type_list_queries_do_not_grow_with_rules(admin_client):
    with CaptureQueriesContext(connection) as without_rules:
        admin_client.get(EVENT_TYPES)
    routing_import(RICH)
    for event_type in EventType.objects.filter(category__slug__in=["users", "ai_ml"]):
        routing_rule_set(event_type=event_type, channels=["email"])
    assert RoutingRule.objects.count() > 10

    with CaptureQueriesContext(connection) as with_rules:
        response = admin_client.get(EVENT_TYPES)

    assert "(event type rule)" in response.content.decode()
    assert len(with_rules) == len(without_rules)


def test_exported_yaml_matches_what_the_event_type_list_shows(admin_client):
    routing_import(RICH)

    cells = effective_channels(admin_client.get(EVENT_TYPES))
    exported = yaml.safe_load(admin_client.get(EXPORT).content)["routing"]

    assert cells["query.query_timeout"] == "{} + {} (category rule)".format(
        ", ".join(exported["queries"]["channels"]), ", ".join(exported["queries"]["emails"]))
    assert cells["system.scheduled_maintenance"] == "webhook (category rule)"
