"""Routing: which channels an event type goes to, and what routing an event creates.

Event type rule > category rule > default of the effective priority; routing rules are
validated the same way through the model, the service, the REST API (the admin form is in
test_routing_admin.py).
"""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import ApplicationError
from events import emit
from events.models import Category, Event, EventType
from events.services.catalog import event_type_update
from notifications.models import Delivery, Notification, RoutingRule
from notifications.routing.route import event_route
from notifications.routing.rules import RoutingRules, routing_get
from notifications.services.rules import routing_rule_set

ALL = ["in_app", "email", "webhook"]


def event_type(key: str) -> EventType:
    return EventType.objects.select_related("category").get(key=key)


def category(slug: str) -> Category:
    return Category.objects.get(slug=slug)


# --- resolution order ---------------------------------------------------------------------

@pytest.mark.parametrize(("key", "priority", "channels"), [
    ("data_source.connection_lost", "critical", ALL),
    ("query.query_failed", "high", ["in_app", "email"]),
    ("query.long_running_query", "medium", ["in_app"]),
    ("policy.policy_created", "low", ["in_app"]),
    ("data_source.schema_change", "info", ["in_app"]),
])
def test_without_rules_the_priority_default_applies(db, key, priority, channels):
    routing = routing_get(event_type(key))

    assert (routing.priority, routing.channels) == (priority, channels)
    assert routing.source_label == "priority default"
    assert routing.rule is None


def test_priority_override_changes_the_default_channels(db):
    long_running = event_type("query.long_running_query")
    assert routing_get(long_running).channels == ["in_app"]

    event_type_update(event_type=long_running, priority_override="critical")

    routing = routing_get(event_type("query.long_running_query"))
    assert routing.priority == "critical"
    assert routing.channels == ALL
    assert routing.source_label == "priority default"

    event_type_update(event_type=long_running, priority_override="high")
    assert routing_get(event_type("query.long_running_query")).channels == ["in_app", "email"]

    event_type_update(event_type=long_running, priority_override="")
    assert routing_get(event_type("query.long_running_query")).channels == ["in_app"]


def test_an_explicit_priority_picks_that_priority_default(db):
    # An event keeps the priority it was emitted with, even if the type changes later.
    routing = routing_get(event_type("query.long_running_query"), priority="high")

    assert routing.channels == ["in_app", "email"]
    assert routing.priority == "high"


def test_category_rule_beats_the_priority_default(db):
    routing_rule_set(category=category("queries"), channels=["webhook"])

    for key in ["query.query_failed", "query.query_timeout", "query.long_running_query"]:
        routing = routing_get(event_type(key))
        assert routing.channels == ["webhook"], key
        assert routing.source_label == "category rule"
    # Other categories keep their defaults.
    assert routing_get(event_type("data_source.connection_lost")).channels == ALL


def test_event_type_rule_beats_the_category_rule(db):
    routing_rule_set(category=category("queries"), channels=["webhook"])
    rule = routing_rule_set(event_type=event_type("query.query_failed"), channels=["email"])

    routing = routing_get(event_type("query.query_failed"))
    assert routing.channels == ["email"]
    assert routing.source_label == "event type rule"
    assert routing.rule == rule
    assert routing_get(event_type("query.query_timeout")).source_label == "category rule"


def test_a_rule_wins_over_a_priority_override(db):
    failed = event_type("query.query_failed")
    routing_rule_set(event_type=failed, channels=["in_app"])

    event_type_update(event_type=failed, priority_override="critical")

    routing = routing_get(event_type("query.query_failed"))
    assert routing.priority == "critical"
    assert routing.channels == ["in_app"]


def test_deleting_a_rule_falls_back_to_the_next_level(db):
    routing_rule_set(category=category("queries"), channels=["webhook"])
    rule = routing_rule_set(event_type=event_type("query.query_failed"), channels=["email"])

    rule.delete()
    assert routing_get(event_type("query.query_failed")).source_label == "category rule"

    RoutingRule.objects.filter(category__slug="queries").delete()
    routing = routing_get(event_type("query.query_failed"))
    assert (routing.channels, routing.source_label) == (["in_app", "email"], "priority default")


def test_routing_rules_agrees_with_routing_get_for_every_event_type(db):
    routing_rule_set(category=category("queries"), channels=["webhook"])
    routing_rule_set(category=category("users"), channels=["in_app", "email"])
    routing_rule_set(event_type=event_type("query.query_failed"), channels=["email"])
    routing_rule_set(event_type=event_type("system.scheduled_maintenance"), channels=["email"])
    event_type_update(event_type=event_type("policy.policy_created"), priority_override="high")
    types = list(EventType.objects.select_related("category"))
    assert len(types) >= 21

    rules = RoutingRules()

    for each in types:
        assert rules.resolve(each) == routing_get(each), each.key


def test_routing_rules_loads_once_for_any_number_of_event_types(db):
    routing_rule_set(category=category("queries"), channels=["webhook"])
    routing_rule_set(event_type=event_type("query.query_failed"), channels=["email"])
    types = list(EventType.objects.all())

    with CaptureQueriesContext(connection) as one:
        RoutingRules().resolve(types[0])
    with CaptureQueriesContext(connection) as many:
        rules = RoutingRules()
        for each in types:
            rules.resolve(each)

    assert len(many) == len(one) == 1


# --- routing an event ---------------------------------------------------------------------

@pytest.fixture
def workspace(make_workspace):
    return make_workspace(members=2)


def route(key: str, workspace, **kwargs) -> Event:
    event = emit(key, workspace=workspace, payload={"datasource_name": "warehouse"}, **kwargs)
    event_route(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == Event.Status.ROUTED
    return event


def test_rule_on_a_critical_type_notifies_in_app_and_plans_email_with_extra_addresses(
    db, workspace
):
    routing_rule_set(event_type=event_type("data_source.connection_lost"),
                     channels=["in_app", "email"], extra_emails=["oncall@example.com"])

    event = route("data_source.connection_lost", workspace)

    notified = set(Notification.objects.filter(event=event).values_list("user_id", flat=True))
    assert notified == {member.pk for member in workspace.people}
    emails = Delivery.objects.filter(event=event, channel="email")
    assert {d.target for d in emails} == {
        *(member.email for member in workspace.people), "oncall@example.com"}
    assert {(d.status, d.bucket) for d in emails} == {("pending", "")}
    assert not Delivery.objects.filter(event=event).exclude(channel="email").exists()


def test_email_only_rule_creates_no_in_app_notification(db, workspace):
    routing_rule_set(event_type=event_type("data_source.connection_lost"), channels=["email"])

    event = route("data_source.connection_lost", workspace)

    assert not Notification.objects.filter(event=event).exists()
    assert Delivery.objects.filter(event=event, channel="email").count() == 2


def test_in_app_only_rule_plans_no_email(db, workspace):
    routing_rule_set(event_type=event_type("policy.violation_detected"), channels=["in_app"])

    event = route("policy.violation_detected", workspace)

    assert Notification.objects.filter(event=event).count() == 2
    assert not Delivery.objects.filter(event=event, channel="email").exists()


def test_without_rules_a_critical_event_notifies_in_app_and_by_email(db, workspace):
    event = route("policy.violation_detected", workspace)

    assert Notification.objects.filter(event=event).count() == 2
    assert {d.target for d in Delivery.objects.filter(event=event, channel="email")} == {
        member.email for member in workspace.people}


def test_category_rule_adds_email_to_a_medium_type_in_its_digest_bucket(db, workspace):
    routing_rule_set(category=category("queries"), channels=["in_app", "email"],
                     extra_emails=["data-team@example.com"])

    event = route("query.long_running_query", workspace)

    emails = Delivery.objects.filter(event=event, channel="email")
    assert {d.target for d in emails} == {
        *(member.email for member in workspace.people), "data-team@example.com"}
    # Medium is batched: the email waits in the 5 minute bucket like the in-app items.
    assert {d.bucket for d in emails} == {"5m"}
    assert Delivery.objects.filter(event=event, channel="in_app", bucket="5m").count() == 2


def test_medium_type_without_rules_plans_no_email(db, workspace):
    event = route("query.long_running_query", workspace)

    assert not Delivery.objects.filter(event=event, channel="email").exists()


def test_priority_override_to_critical_routes_by_the_critical_default(db, workspace):
    event_type_update(event_type=event_type("query.long_running_query"),
                      priority_override="critical")

    event = route("query.long_running_query", workspace)

    assert event.priority == "critical"
    assert Notification.objects.filter(event=event).count() == 2
    assert Delivery.objects.filter(event=event, channel="email", bucket="").count() == 2


def test_routing_follows_the_rules_in_force_when_the_event_is_routed(db, workspace):
    event = emit("data_source.connection_lost", workspace=workspace)
    routing_rule_set(event_type=event_type("data_source.connection_lost"), channels=["email"])

    event_route(event_id=event.pk)

    assert not Notification.objects.filter(event=event).exists()
    assert Delivery.objects.filter(event=event, channel="email").count() == 2


def test_extra_emails_duplicating_a_member_get_one_delivery(db, workspace):
    member = workspace.people[0]
    routing_rule_set(event_type=event_type("data_source.connection_lost"), channels=["email"],
                     extra_emails=[member.email.upper()])

    event = route("data_source.connection_lost", workspace)

    assert Delivery.objects.filter(event=event, channel="email").count() == 2


# --- validating routing rules -------------------------------------------------------------

def test_model_full_clean_refuses_an_unknown_channel(db):
    rule = RoutingRule(event_type=event_type("query.query_failed"), channels=["in_app", "sms"])

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert caught.value.message_dict["channels"] == [
        "Unknown channel 'sms'; choose from in_app, email, webhook."]


@pytest.mark.parametrize("channels", [[], "in_app", None], ids=["empty", "not-a-list", "null"])
def test_model_full_clean_refuses_a_missing_channel_list(db, channels):
    rule = RoutingRule(event_type=event_type("query.query_failed"), channels=channels)

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert list(caught.value.message_dict) == ["channels"]


def test_model_full_clean_refuses_a_duplicate_channel_and_bad_extra_emails(db):
    rule = RoutingRule(event_type=event_type("query.query_failed"), channels=["email", "email"],
                       extra_emails=["not-an-address"])

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert caught.value.message_dict["channels"] == ["A channel is listed twice."]
    assert "'not-an-address' is not a valid email address." in (
        caught.value.message_dict["extra_emails"])


@pytest.mark.parametrize("targets", ["both", "neither"])
def test_model_full_clean_needs_exactly_one_target(db, targets):
    rule = RoutingRule(channels=["email"])
    if targets == "both":
        rule.event_type = event_type("query.query_failed")
        rule.category = category("queries")

    with pytest.raises(ValidationError, match="exactly one target: a category or an event type"):
        rule.full_clean()


def test_service_refuses_an_unknown_channel_and_writes_nothing(db):
    with pytest.raises(ApplicationError) as caught:
        routing_rule_set(event_type=event_type("query.query_failed"), channels=["pager"])

    assert "Unknown channel 'pager'" in caught.value.errors["channels"][0]
    assert not RoutingRule.objects.exists()


def test_service_refuses_an_empty_channel_list_and_keeps_the_rule(db):
    failed = event_type("query.query_failed")
    routing_rule_set(event_type=failed, channels=["email"])

    with pytest.raises(ApplicationError) as caught:
        routing_rule_set(event_type=failed, channels=[])

    assert caught.value.errors["channels"] == ["Choose at least one channel."]
    assert RoutingRule.objects.get(event_type=failed).channels == ["email"]


@pytest.mark.parametrize("targets", ["both", "neither"])
def test_service_needs_exactly_one_target(db, targets):
    kwargs = {}
    if targets == "both":
        kwargs = {"event_type": event_type("query.query_failed"),
                  "category": category("queries")}

    with pytest.raises(ApplicationError, match="exactly one target: a category or an event type"):
        routing_rule_set(channels=["email"], **kwargs)

    assert not RoutingRule.objects.exists()


def test_service_replaces_the_existing_rule_of_a_target(db):
    failed = event_type("query.query_failed")
    first = routing_rule_set(event_type=failed, channels=["email"],
                             extra_emails=["a@example.com"])

    second = routing_rule_set(event_type=failed, channels=["webhook"])

    assert second.pk == first.pk
    second.refresh_from_db()
    assert second.channels == ["webhook"]
    assert second.extra_emails == ["a@example.com"]  # not passed: kept
    assert RoutingRule.objects.count() == 1


# --- REST: /api/routing-rules/ -------------------------------------------------------------

RULES_URL = "/api/routing-rules/"


def test_api_crud_of_routing_rules(staff_api):
    created = staff_api.post(RULES_URL, {
        "event_type": "query.query_failed", "channels": ["email"],
        "extra_emails": ["oncall@example.com"],
    }, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["event_type"] == "query.query_failed"
    assert rule["category"] is None
    routing = routing_get(event_type("query.query_failed"))
    assert (routing.channels, routing.source_label) == (["email"], "event type rule")

    category_rule = staff_api.post(RULES_URL, {"category": "queries", "channels": ["webhook"]},
                                   format="json")
    assert category_rule.status_code == 201, category_rule.content
    assert routing_get(event_type("query.query_timeout")).channels == ["webhook"]

    listed = staff_api.get(RULES_URL)
    assert listed.status_code == 200
    payload = listed.json()
    items = payload["results"] if isinstance(payload, dict) else payload
    assert {(r["category"], r["event_type"]) for r in items} == {
        (None, "query.query_failed"), ("queries", None)}

    detail_url = f"{RULES_URL}{rule['id']}/"
    assert staff_api.get(detail_url).json()["extra_emails"] == ["oncall@example.com"]
    changed = staff_api.patch(detail_url, {"channels": ["in_app", "email"]}, format="json")
    assert changed.status_code == 200, changed.content
    assert routing_get(event_type("query.query_failed")).channels == ["in_app", "email"]

    assert staff_api.delete(detail_url).status_code == 204
    routing = routing_get(event_type("query.query_failed"))
    assert (routing.channels, routing.source_label) == (["webhook"], "category rule")


def test_api_post_with_an_unknown_channel_is_400_naming_channels(staff_api):
    response = staff_api.post(RULES_URL, {"event_type": "query.query_failed",
                                          "channels": ["in_app", "sms"]}, format="json")

    assert response.status_code == 400
    assert "Unknown channel 'sms'" in response.json()["channels"][0]
    assert not RoutingRule.objects.exists()


def test_api_post_with_no_channels_is_400(staff_api):
    response = staff_api.post(RULES_URL, {"event_type": "query.query_failed", "channels": []},
                              format="json")

    assert response.status_code == 400
    assert response.json()["channels"] == ["Choose at least one channel."]


def test_api_patch_with_an_unknown_channel_keeps_the_rule(staff_api):
    rule = routing_rule_set(event_type=event_type("query.query_failed"), channels=["email"])

    response = staff_api.patch(f"{RULES_URL}{rule.pk}/", {"channels": ["fax"]}, format="json")

    assert response.status_code == 400
    assert "channels" in response.json()
    rule.refresh_from_db()
    assert rule.channels == ["email"]


@pytest.mark.parametrize("body", [
    {"event_type": "query.query_failed", "category": "queries", "channels": ["email"]},
    {"channels": ["email"]},
], ids=["both", "neither"])
def test_api_post_needs_exactly_one_of_category_and_event_type(staff_api, body):
    response = staff_api.post(RULES_URL, body, format="json")

    assert response.status_code == 400
    assert "category" in str(response.json()["non_field_errors"])
    assert not RoutingRule.objects.exists()


@pytest.mark.parametrize(("field", "value"), [
    ("event_type", "query.query_failed"), ("category", "queries")])
def test_api_post_of_a_second_rule_for_the_same_target_is_409(staff_api, field, value):
    first = staff_api.post(RULES_URL, {field: value, "channels": ["email"]}, format="json")
    assert first.status_code == 201, first.content

    response = staff_api.post(RULES_URL, {field: value, "channels": ["webhook"]}, format="json")

    assert response.status_code == 409
    assert response.json()["field"] == field and response.json()["code"] == "exists"
    assert "already has a routing rule" in response.json()["detail"]
    assert RoutingRule.objects.get().channels == ["email"]


def test_api_rules_for_different_targets_do_not_collide(staff_api):
    for body in [{"category": "queries", "event_type": None, "channels": ["email"]},
                 {"category": "users", "event_type": None, "channels": ["email"]},
                 {"category": None, "event_type": "query.query_failed", "channels": ["email"]},
                 {"category": None, "event_type": "query.query_timeout", "channels": ["email"]}]:
        response = staff_api.post(RULES_URL, body, format="json")
        assert response.status_code == 201, response.content
    rule = RoutingRule.objects.get(event_type__key="query.query_failed")

    response = staff_api.put(f"{RULES_URL}{rule.pk}/", {
        "event_type": "query.query_failed", "channels": ["webhook"]}, format="json")

    assert response.status_code == 200, response.content
    assert RoutingRule.objects.count() == 4


def test_api_post_with_bad_extra_emails_is_400(staff_api):
    response = staff_api.post(RULES_URL, {"event_type": "query.query_failed",
                                          "channels": ["email"], "extra_emails": ["nope", 5]},
                              format="json")

    assert response.status_code == 400
    assert "extra_emails" in response.json()


def test_api_routing_rules_are_staff_only(api):
    assert api.get(RULES_URL).status_code == 403
    response = api.post(RULES_URL, {"event_type": "query.query_failed", "channels": ["email"]},
                        format="json")
    assert response.status_code == 403
    assert not RoutingRule.objects.exists()
