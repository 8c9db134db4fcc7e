"""The API's one error shape: a service's refusal is a 400 ``{field: [message]}``."""

import pytest

from events.models import Category, Event, EventType
from notifications.models import RoutingRule
from notifications.services.rules import routing_rule_set

EVENTS_URL = "/api/events/"
RULES_URL = "/api/routing-rules/"


def test_an_application_error_from_a_service_is_a_400_naming_its_field(staff_api):
    response = staff_api.post(EVENTS_URL, {"event_type": "query.query_failed",
                                           "workspace_id": "ws_nope"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"workspace_id": ["unknown workspace 'ws_nope'"]}
    assert not Event.objects.exists()


def test_an_application_error_may_add_what_locates_the_problem(staff_api):
    response = staff_api.post("/api/routing/import/",
                              {"yaml": "routing:\n  nowhere: {channels: [email]}\n"},
                              format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"yaml", "path"}
    assert body["path"] == "routing.nowhere"
    assert body["yaml"][0].startswith("routing.nowhere: unknown category")


@pytest.mark.parametrize("body", [
    {"channels": ["email"]},
    {"category": "queries", "event_type": "query.query_failed", "channels": ["email"]},
], ids=["neither", "both"])
def test_a_django_validation_error_from_a_service_is_a_400_of_non_field_errors(staff_api,
                                                                              body):
    response = staff_api.post(RULES_URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Choose exactly one target: a category or an event type."]}
    assert not RoutingRule.objects.exists()


def test_a_patch_the_service_refuses_leaves_the_rule_as_it_was(staff_api):
    rule = routing_rule_set(event_type=EventType.objects.get(key="query.query_failed"),
                            channels=["email"])
    routing_rule_set(category=Category.objects.get(slug="queries"), channels=["in_app"])

    response = staff_api.patch(f"{RULES_URL}{rule.pk}/",
                               {"category": "queries", "channels": ["webhook"]}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "exists"
    rule.refresh_from_db()
    assert (rule.category, rule.event_type.key, rule.channels) == (
        None, "query.query_failed", ["email"])


def test_a_patch_naming_the_other_target_moves_the_rule_to_it(staff_api):
    rule = routing_rule_set(event_type=EventType.objects.get(key="query.query_failed"),
                            channels=["email"])

    moved = staff_api.patch(f"{RULES_URL}{rule.pk}/", {"category": "queries"}, format="json")

    assert moved.status_code == 200
    assert (moved.json()["category"], moved.json()["event_type"]) == ("queries", None)
    emptied = staff_api.patch(f"{RULES_URL}{rule.pk}/", {"category": None}, format="json")
    assert emptied.status_code == 409
    assert emptied.json()["code"] == "no_target"
    both = staff_api.patch(f"{RULES_URL}{rule.pk}/", {
        "category": "queries", "event_type": "query.query_failed"}, format="json")
    assert both.status_code == 400
    rule.refresh_from_db()
    assert (rule.category.slug, rule.event_type) == ("queries", None)

