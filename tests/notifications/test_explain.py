"""Explain: for a routed event and a person, each channel's decision and why; the same as a
dry run for an event that was not emitted; and on the event's admin page, per member."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from events.models import Category, Event, EventType
from notifications.models import (
    Delivery,
    Mute,
    Notification,
    NotificationPreference,
    RoutingRule,
    Silence,
)
from tests.support import emit_and_route

DRY = "/api/routing/explain/"


def explain(api, event, username):
    answer = api.get(f"/api/events/{event.pk}/explain/", {"user": username})
    assert answer.status_code == 200, answer.json()
    return answer.json()


def decisions(body) -> dict:
    return {channel: found["decision"] for channel, found in body["channels"].items()}


@pytest.fixture
def team(make_workspace, make_user):
    people = {name: make_user(name) for name in ("ann", "bob", "cat")}
    workspace = make_workspace("Ops", users=list(people.values()))
    NotificationPreference.objects.create(user=people["bob"], channel="email", enabled=False,
                                          category=Category.objects.get(slug="queries"))
    Mute.objects.create(user=people["cat"], event_type=EventType.objects.get(
        key="query.query_failed"))
    return workspace, people


def test_each_channels_decision_and_why_for_a_routed_event(team, staff_api, make_user):
    workspace, people = team
    event = emit_and_route("query.query_failed", workspace, query_name="q")  # high

    ann = explain(staff_api, event, "ann")
    assert (ann["priority"], ann["rule_source"]) == ("high", "priority_default")
    assert decisions(ann) == {"in_app": "delivered", "email": "delivered",
                              "webhook": "not_routed"}
    assert "priority default routes it to in_app, email" in ann["channels"]["webhook"]["detail"]
    bob = explain(staff_api, event, "bob")
    assert decisions(bob)["email"] == "preference_off"
    assert "switched off" in bob["channels"]["email"]["detail"]
    assert decisions(explain(staff_api, event, "cat")) == {
        "in_app": "muted", "email": "muted", "webhook": "not_routed"}
    make_user("stranger")
    assert decisions(explain(staff_api, event, "stranger"))["in_app"] == "not_in_audience"


def test_digest_held_silenced_and_grouped_are_named(team, staff_api):
    workspace, people = team
    RoutingRule.objects.create(event_type=EventType.objects.get(key="query.long_running_query"),
                               channels=["in_app", "email"])
    medium = emit_and_route("query.long_running_query", workspace, query_name="q")
    assert decisions(explain(staff_api, medium, "ann"))["email"] == "digest"

    Silence.objects.create(matchers={"category": "data_sources"}, starts_at=timezone.now(),
                           ends_at=timezone.now() + timedelta(hours=1), comment="maintenance")
    silenced = emit_and_route("data_source.connection_lost", workspace, datasource_name="x")
    body = explain(staff_api, silenced, "ann")
    assert set(decisions(body).values()) == {"silenced"}
    assert "maintenance" in body["channels"]["in_app"]["detail"]

    Silence.objects.all().delete()
    EventType.objects.filter(key="data_source.connection_lost").update(
        group_by=["datasource_name"])
    emit_and_route("data_source.connection_lost", workspace, datasource_name="y")
    repeat = emit_and_route("data_source.connection_lost", workspace, datasource_name="y")
    assert set(decisions(explain(staff_api, repeat, "ann")).values()) == {"grouped"}

    Delivery.objects.filter(event=medium, user=people["ann"], channel="email").update(
        status="held", decision="held", reason="Quiet hours 22:00-07:00 (UTC)")
    assert decisions(explain(staff_api, medium, "ann"))["email"] == "held"


def test_a_dry_run_decides_the_same_and_writes_nothing(team, staff_api):
    workspace, _ = team
    counts = (Event.objects.count(), Notification.objects.count(), Delivery.objects.count())

    def dry(user, event_type="query.query_failed", **extra):
        answer = staff_api.post(DRY, {"event_type": event_type, "workspace_id":
                                      workspace.public_id, "payload": {"query_name": "q"},
                                      "user": user, **extra}, format="json")
        assert answer.status_code == 200, answer.json()
        return decisions(answer.json())

    assert dry("ann") == {"in_app": "delivered", "email": "delivered", "webhook": "not_routed"}
    assert dry("bob")["email"] == "preference_off"
    assert dry("cat")["in_app"] == "muted"
    assert dry("cat", event_type="data_source.connection_lost")["in_app"] == "delivered"
    assert dry("ann", event_type="query.long_running_query")["in_app"] == "digest"
    assert (Event.objects.count(), Notification.objects.count(),
            Delivery.objects.count()) == counts


@pytest.mark.parametrize(("body", "field"), [
    ({"event_type": "query.nope", "user": "ann"}, "event_type"),
    ({"event_type": "query.query_failed", "user": "nobody"}, "user"),
    ({"event_type": "query.query_failed", "user": "ann", "workspace_id": "ws_nope"},
     "workspace_id"),
    ({"event_type": "query.query_failed"}, "user"),
])
def test_a_bad_dry_run_is_a_400_naming_the_field(team, staff_api, body, field):
    answer = staff_api.post(DRY, body, format="json")

    assert answer.status_code == 400 and field in answer.json(), answer.json()


def test_explain_is_for_staff_and_names_an_unknown_user(team, api, staff_api):
    event = emit_and_route("query.query_failed", team[0], query_name="q")

    assert api.get(f"/api/events/{event.pk}/explain/", {"user": "ann"}).status_code == 403
    answer = staff_api.get(f"/api/events/{event.pk}/explain/", {"user": "nobody"})
    assert answer.status_code == 400 and "user" in answer.json()


def test_the_events_admin_page_explains_it_per_member(team, admin_client):
    event = emit_and_route("query.query_failed", team[0], query_name="q")

    html = admin_client.get(reverse("admin:events_event_change", args=[event.pk])).content.decode()

    assert 'id="event-explain"' in html
    for name, decision in (("ann", "delivered"), ("bob", "preference_off"), ("cat", "muted")):
        row = html[html.index(f"<th scope=\"row\">{name}</th>"):]
        assert decision in row[:row.index("</tr>")]
