"""REST: POST /api/events/ (emit over HTTP) and the event catalog at /api/event-types/."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from events.models import Category, Event, EventType
from notifications.models import Notification, RoutingRule
from tests.support import api_client_for

EVENTS_URL = "/api/events/"
EVENT_TYPES_URL = "/api/event-types/"


def grant(person, *codenames):
    person.user_permissions.add(*Permission.objects.filter(
        codename__in=codenames, content_type__app_label="events"))
    return person


@pytest.fixture
def emitter(make_user):
    """A service account: 'events.emit_event' and 'events.emit_any_workspace', not staff."""
    return grant(make_user("emitter"), "emit_event", "emit_any_workspace")


@pytest.fixture
def emitter_api(emitter):
    return api_client_for(emitter)


def event_type(key: str) -> EventType:
    return EventType.objects.get(key=key)


# --- POST /api/events/: who may emit ------------------------------------------------------

def test_anonymous_cannot_emit(db):
    response = APIClient().post(EVENTS_URL, {"event_type": "query.query_failed"}, format="json")

    assert response.status_code in (401, 403)
    assert not Event.objects.exists()


def test_user_without_the_permission_is_refused(api):
    response = api.post(EVENTS_URL, {"event_type": "query.query_failed"}, format="json")

    assert response.status_code == 403
    assert "emit_event" in response.json()["detail"]
    assert not Event.objects.exists()


def test_user_with_the_permission_emits_and_gets_the_event(emitter_api, make_workspace):
    workspace = make_workspace(members=1)
    occurred_at = "2024-05-01T12:30:00Z"

    response = emitter_api.post(EVENTS_URL, {
        "event_type": "data_source.connection_lost",
        "workspace_id": workspace.public_id,
        "payload": {"datasource_name": "Production Snowflake", "attempts": 3},
        "dedupe_key": "snowflake-down-1",
        "occurred_at": occurred_at,
    }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    event = Event.objects.get()
    assert body["id"] == str(event.pk)
    assert body["event_type"] == "data_source.connection_lost"
    assert body["priority"] == "critical"
    assert body["workspace_id"] == workspace.public_id
    assert body["payload"] == {"datasource_name": "Production Snowflake", "attempts": 3}
    assert body["dedupe_key"] == "snowflake-down-1"
    assert body["status"] == "pending"
    assert datetime.fromisoformat(body["occurred_at"]) == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert event.workspace == workspace
    assert event.occurred_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert event.payload == body["payload"]


def test_superuser_may_emit_with_only_the_event_type(staff_api):
    response = staff_api.post(EVENTS_URL, {"event_type": "system.scheduled_maintenance"},
                              format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["event_type"] == "system.scheduled_maintenance"
    assert body["priority"] == "medium"
    assert body["workspace_id"] is None
    assert body["payload"] == {}
    assert body["occurred_at"]
    assert Event.objects.filter(pk=body["id"]).exists()


def test_emitted_event_uses_the_priority_override(emitter_api):
    EventType.objects.filter(key="query.query_failed").update(priority_override="low")

    response = emitter_api.post(EVENTS_URL, {"event_type": "query.query_failed"}, format="json")

    assert response.status_code == 201
    assert response.json()["priority"] == "low"


def test_event_of_a_disabled_type_is_logged_but_not_routed(emitter_api):
    EventType.objects.filter(key="query.query_failed").update(enabled=False)

    response = emitter_api.post(EVENTS_URL, {"event_type": "query.query_failed"}, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "suppressed"
    assert Event.objects.get().status == Event.Status.SUPPRESSED


# --- POST /api/events/: bad input is a 400 naming the field, and writes nothing -----------

@pytest.mark.parametrize(("body", "field", "message_part"), [
    ({"event_type": "query.no_such_thing"}, "event_type", "query.no_such_thing"),
    ({"payload": {"query_name": "q"}}, "event_type", "required"),
    ({"event_type": "query.query_failed", "payload": ["a", "list"]}, "payload", "object"),
    ({"event_type": "query.query_failed", "payload": "text"}, "payload", "object"),
    ({"event_type": "query.query_failed", "payload": {"blob": "x" * (65 * 1024)}},
     "payload", "limit"),
    ({"event_type": "query.query_failed", "workspace_id": "ws_doesnotexist"},
     "workspace_id", "ws_doesnotexist"),
    ({"event_type": "query.query_failed", "occurred_at": "yesterday-ish"}, "occurred_at", "format"),
    ({"event_type": "query.query_failed", "dedupe_key": "k" * 201}, "dedupe_key", "200"),
], ids=["unknown-type", "missing-type", "payload-list", "payload-string", "payload-too-large",
        "unknown-workspace", "bad-occurred-at", "dedupe-key-too-long"])
def test_bad_input_is_400_naming_the_field(emitter_api, make_workspace, body, field,
                                           message_part):
    make_workspace(members=1)

    response = emitter_api.post(EVENTS_URL, body, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field], errors
    assert message_part.lower() in " ".join(errors[field]).lower()
    assert Event.objects.count() == 0


def test_payload_just_under_the_limit_is_accepted(emitter_api):
    blob = "x" * (64 * 1024 - len('{"blob":""}'))

    response = emitter_api.post(EVENTS_URL, {"event_type": "query.query_failed",
                                             "payload": {"blob": blob}}, format="json")

    assert response.status_code == 201, response.json()
    assert len(Event.objects.get().payload["blob"]) == len(blob)


def test_malformed_json_is_400_with_a_parse_error(emitter_api):
    response = emitter_api.post(EVENTS_URL, data='{"event_type": "query.query_failed",',
                                content_type="application/json")

    assert response.status_code == 400
    assert "parse error" in response.json()["detail"].lower()
    assert Event.objects.count() == 0


def test_repeated_dedupe_key_returns_the_same_event(emitter_api, make_workspace):
    workspace = make_workspace(members=1)
    body = {"event_type": "query.query_timeout", "workspace_id": workspace.public_id,
            "dedupe_key": "nightly-etl-2024-05-01", "payload": {"query_name": "etl"}}

    first = emitter_api.post(EVENTS_URL, body, format="json")
    second = emitter_api.post(EVENTS_URL, {**body, "payload": {"query_name": "other"}},
                              format="json")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["payload"] == {"query_name": "etl"}
    assert Event.objects.count() == 1


def test_same_dedupe_key_in_another_workspace_is_another_event(emitter_api, make_workspace):
    one, two = make_workspace("One"), make_workspace("Two")
    body = {"event_type": "query.query_timeout", "dedupe_key": "same-key"}

    first = emitter_api.post(EVENTS_URL, {**body, "workspace_id": one.public_id}, format="json")
    second = emitter_api.post(EVENTS_URL, {**body, "workspace_id": two.public_id}, format="json")

    assert first.json()["id"] != second.json()["id"]
    assert Event.objects.count() == 2


# --- GET /api/event-types/ ----------------------------------------------------------------

def test_anonymous_cannot_read_the_catalog(db):
    client = APIClient()

    assert client.get(EVENT_TYPES_URL).status_code in (401, 403)
    assert client.get(f"{EVENT_TYPES_URL}query.query_failed/").status_code in (401, 403)


def test_catalog_lists_all_22_event_types_with_effective_routing(api):
    response = api.get(EVENT_TYPES_URL)

    assert response.status_code == 200
    items = response.json()
    assert len(items) == 22
    by_key = {item["key"]: item for item in items}
    assert len(by_key) == 22
    for item in items:
        assert {"key", "category", "label", "default_priority", "priority_override",
                "effective_priority", "enabled", "effective_channels",
                "channels_source"} <= set(item)
        assert item["enabled"] is True
        assert item["effective_priority"] == item["default_priority"]
        assert item["channels_source"] == "priority_default"
    assert by_key["data_source.connection_lost"]["category"] == "data_sources"
    assert by_key["data_source.connection_lost"]["effective_priority"] == "critical"
    assert by_key["data_source.connection_lost"]["effective_channels"] == [
        "in_app", "email", "webhook"]
    assert by_key["query.query_failed"]["effective_channels"] == ["in_app", "email"]
    assert by_key["policy.policy_created"]["effective_priority"] == "low"
    assert by_key["policy.policy_created"]["effective_channels"] == ["in_app"]


def test_catalog_filters_by_category(api):
    response = api.get(EVENT_TYPES_URL, {"category": "queries"})

    assert response.status_code == 200
    assert sorted(item["key"] for item in response.json()) == [
        "query.long_running_query", "query.query_failed", "query.query_timeout"]


def test_event_type_detail_by_key(api):
    response = api.get(f"{EVENT_TYPES_URL}data_source.connection_lost/")

    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "data_source.connection_lost"
    assert body["category"] == "data_sources"
    assert body["effective_priority"] == "critical"
    assert body["effective_channels"] == ["in_app", "email", "webhook"]
    assert body["channels_source"] == "priority_default"
    assert "datasource_name" in body["title_template"]


def test_unknown_event_type_detail_is_404(api):
    assert api.get(f"{EVENT_TYPES_URL}data_source.nope/").status_code == 404


def test_catalog_shows_which_routing_rule_applies(api):
    RoutingRule.objects.create(event_type=event_type("query.query_failed"),
                               channels=["in_app", "webhook"])
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"), channels=["email"])

    by_key = {item["key"]: item for item in api.get(EVENT_TYPES_URL).json()}

    assert by_key["query.query_failed"]["effective_channels"] == ["in_app", "webhook"]
    assert by_key["query.query_failed"]["channels_source"] == "event_type_rule"
    assert by_key["query.query_timeout"]["effective_channels"] == ["email"]
    assert by_key["query.query_timeout"]["channels_source"] == "category_rule"
    assert by_key["user.user_invited"]["channels_source"] == "priority_default"


def test_catalog_list_query_count_does_not_grow_with_rules_or_event_types(api):
    with CaptureQueriesContext(connection) as baseline:
        assert api.get(EVENT_TYPES_URL).status_code == 200

    system = Category.objects.get(slug="system")
    for n in range(10):
        EventType.objects.create(key=f"system.custom_{n}", category=system, name=f"custom_{n}",
                                 label=f"Custom {n}", title_template="Custom",
                                 default_priority="low")
    for key in EventType.objects.values_list("key", flat=True)[:12]:
        RoutingRule.objects.create(event_type=event_type(key), channels=["in_app", "email"])
    for category in Category.objects.all():
        RoutingRule.objects.create(category=category, channels=["webhook"])
    with CaptureQueriesContext(connection) as larger:
        response = api.get(EVENT_TYPES_URL)

    assert response.status_code == 200
    assert len(response.json()) == 32  # 22 + 10
    assert all(item["channels_source"] != "priority_default" for item in response.json())
    assert len(larger) == len(baseline)


# --- PATCH /api/event-types/{key}/ --------------------------------------------------------

def test_staff_disables_an_event_type(staff_api):
    response = staff_api.patch(f"{EVENT_TYPES_URL}system.platform_update_available/",
                               {"enabled": False}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["enabled"] is False
    assert event_type("system.platform_update_available").enabled is False
    assert staff_api.get(f"{EVENT_TYPES_URL}system.platform_update_available/").json()[
        "enabled"] is False


def test_staff_overrides_priority_and_the_default_channels_follow(staff_api):
    url = f"{EVENT_TYPES_URL}query.query_failed/"

    response = staff_api.patch(url, {"priority_override": "medium"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["default_priority"] == "high"
    assert body["priority_override"] == "medium"
    assert body["effective_priority"] == "medium"
    assert body["effective_channels"] == ["in_app"]
    assert body["enabled"] is True
    assert event_type("query.query_failed").priority_override == "medium"

    raised = staff_api.patch(url, {"priority_override": "critical"}, format="json").json()
    assert raised["effective_priority"] == "critical"
    assert raised["effective_channels"] == ["in_app", "email", "webhook"]

    cleared = staff_api.patch(url, {"priority_override": ""}, format="json").json()
    assert cleared["priority_override"] == ""
    assert cleared["effective_priority"] == "high"
    assert cleared["effective_channels"] == ["in_app", "email"]
    assert event_type("query.query_failed").priority_override == ""


def test_patch_of_one_field_leaves_the_other_alone(staff_api):
    EventType.objects.filter(key="ai_ml.model_error").update(priority_override="low")

    response = staff_api.patch(f"{EVENT_TYPES_URL}ai_ml.model_error/", {"enabled": False},
                               format="json")

    assert response.status_code == 200
    assert response.json()["effective_priority"] == "low"
    stored = event_type("ai_ml.model_error")
    assert (stored.enabled, stored.priority_override) == (False, "low")


def test_non_staff_cannot_patch(api):
    response = api.patch(f"{EVENT_TYPES_URL}query.query_failed/",
                         {"enabled": False, "priority_override": "info"}, format="json")

    assert response.status_code == 403
    stored = event_type("query.query_failed")
    assert (stored.enabled, stored.priority_override) == (True, "")


def test_anonymous_cannot_patch(db):
    response = APIClient().patch(f"{EVENT_TYPES_URL}query.query_failed/", {"enabled": False},
                                 format="json")

    assert response.status_code in (401, 403)
    assert event_type("query.query_failed").enabled is True


def test_invalid_priority_override_is_400_naming_the_field(staff_api):
    response = staff_api.patch(f"{EVENT_TYPES_URL}query.query_failed/",
                               {"priority_override": "urgent"}, format="json")

    assert response.status_code == 400
    assert "priority_override" in response.json()
    assert event_type("query.query_failed").priority_override == ""


def test_an_unknown_field_is_refused_by_name_not_ignored(emitter_api, make_workspace):
    workspace = make_workspace(members=1)

    response = emitter_api.post(EVENTS_URL, {"event_type": "data_source.connection_lost",
                                             "workspace": workspace.public_id}, format="json")

    assert response.status_code == 400
    assert "unknown field" in response.json()["workspace"][0]
    assert "workspace_id" in response.json()["workspace"][0]
    assert Event.objects.count() == 0


def test_recipients_narrow_the_audience(emitter_api, make_workspace):
    from notifications.routing.route import event_route

    workspace = make_workspace(members=3)
    chosen = workspace.people[1]

    response = emitter_api.post(EVENTS_URL, {
        "event_type": "query.query_failed", "workspace_id": workspace.public_id,
        "recipients": [chosen.pk], "payload": {"query_name": "etl"}}, format="json")
    event_route(event_id=response.json()["id"])
    outsider = emitter_api.post(EVENTS_URL, {
        "event_type": "query.query_failed", "workspace_id": workspace.public_id,
        "recipients": [999999]}, format="json")

    assert response.status_code == 201
    assert list(Notification.objects.values_list("user", flat=True)) == [chosen.pk]
    assert outsider.status_code == 400
    assert "not members of workspace" in outsider.json()["recipients"][0]
