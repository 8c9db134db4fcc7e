"""Acknowledge, escalate, resolve, inhibit: in this process against the real pipeline, SMTP
and HTTP receivers on loopback. Nothing is enqueued (the test's transaction never commits);
each step the worker and beat would take is called here (the worker test does it for real).
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.services.webhooks import webhook_endpoint_save
from events import emit
from events.models import Category, Event, EventType
from notifications.deliveries.send import delivery_send
from notifications.models import Delivery, Escalation, InhibitRule, Notification, RoutingRule
from notifications.routing.route import event_route, events_route
from notifications.services.incidents import escalations_send
from tests.support import api_client_for, emit_and_route

LOST, BACK = "data_source.connection_lost", "data_source.connection_established"
QUERY_FAILED = "query.query_failed"


@pytest.fixture
def team(make_workspace, make_user):
    people = [make_user(f"ops{n}", email=f"ops{n}@datafi.test") for n in range(2)]
    workspace = make_workspace("Ops", users=people)
    workspace.people = people
    return workspace


def escalate_rule(**escalate):
    return RoutingRule.objects.create(
        event_type=EventType.objects.get(key=LOST), channels=["in_app"],
        escalate={"after_minutes": 15, "channels": ["email"], "emails": [], **escalate})


def notification_of(user, event) -> Notification:
    return Notification.objects.get(user=user, event=event)


def send_all(rows) -> list[str]:
    return [delivery_send(delivery_id=row.pk) for row in rows]


# --- acknowledge ----------------------------------------------------------------------------

def test_one_acknowledgement_is_everyones_and_says_who_and_when(team):
    first, second = team.people
    event = emit_and_route(LOST, team, datasource_name="Warehouse")
    mine = notification_of(first, event)

    answer = api_client_for(first).post(f"/api/notifications/{mine.pk}/acknowledge/")

    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["acknowledged_by"], body["is_read"]) == ("ops0", True)
    assert body["acknowledged_at"] is not None
    theirs = api_client_for(second).get("/api/notifications/").json()["results"][0]
    assert (theirs["acknowledged_by"], theirs["acknowledged_at"], theirs["is_read"]) == (
        "ops0", body["acknowledged_at"], False)
    again = api_client_for(second).post(
        f"/api/notifications/{notification_of(second, event).pk}/acknowledge/")
    assert (again.status_code, again.json()["acknowledged_by"]) == (200, "ops0")
    event.refresh_from_db()
    assert event.acknowledged_by == first


def test_acknowledging_refuses_a_body_and_others_notifications(team, make_user):
    event = emit_and_route(LOST, team, datasource_name="Warehouse")
    mine = notification_of(team.people[0], event)
    api = api_client_for(team.people[0])

    assert api.post(f"/api/notifications/{mine.pk}/acknowledge/", {"x": 1},
                    format="json").status_code == 400
    assert api_client_for(make_user("stranger")).post(
        f"/api/notifications/{mine.pk}/acknowledge/").status_code == 404
    event.refresh_from_db()
    assert event.acknowledged_at is None


# --- escalate -------------------------------------------------------------------------------

def test_an_unacknowledged_critical_event_escalates_once_on_the_rules_channels(
        team, smtp_server, email_on):
    server = smtp_server()
    email_on(server)
    escalate_rule(emails=["oncall@datafi.test"])
    event = emit_and_route(LOST, team, datasource_name="Warehouse")
    escalation = Escalation.objects.get(event=event)
    assert escalation.status == "pending"
    assert timedelta(minutes=14) < escalation.due_at - timezone.now() <= timedelta(minutes=15)
    assert not Delivery.objects.filter(event=event, channel="email").exists()

    assert escalations_send() == 0  # not due yet
    assert escalations_send(now=escalation.due_at) == 1
    assert escalations_send(now=escalation.due_at + timedelta(hours=1)) == 0  # once

    rows = Delivery.objects.filter(event=event, purpose="escalation")
    assert sorted(rows.values_list("target", flat=True)) == [
        "oncall@datafi.test", "ops0@datafi.test", "ops1@datafi.test"]
    assert send_all(rows) == ["delivered"] * 3
    subjects = {message.message["Subject"] for message in server.received}
    assert subjects == {"[Critical] Escalated: Connection lost: Warehouse"}
    event.refresh_from_db()
    assert event.escalated_at is not None
    listed = api_client_for(team.people[0]).get("/api/notifications/").json()["results"][0]
    assert listed["escalated_at"] is not None


def test_acknowledging_or_resolving_first_cancels_the_escalation(team):
    escalate_rule()
    acknowledged = emit_and_route(LOST, team, datasource_name="A")
    resolved = emit_and_route(LOST, team, datasource_name="B")

    api = api_client_for(team.people[0])
    api.post(f"/api/notifications/{notification_of(team.people[0], acknowledged).pk}"
             "/acknowledge/")
    api.post(f"/api/events/{resolved.pk}/resolve/")

    assert set(Escalation.objects.values_list("status", flat=True)) == {"cancelled"}
    assert escalations_send(now=timezone.now() + timedelta(days=1)) == 0
    assert not Delivery.objects.filter(purpose="escalation").exists()


def test_only_critical_and_high_events_escalate(team):
    RoutingRule.objects.create(
        category=Category.objects.get(slug="queries"), channels=["in_app"],
        escalate={"after_minutes": 5, "channels": ["email"]})
    emit_and_route("query.long_running_query", team, query_name="slow")  # medium
    emit_and_route(QUERY_FAILED, team, query_name="broken")  # high

    assert list(Escalation.objects.values_list("event__event_type__key", flat=True)) == [
        QUERY_FAILED]


def test_two_sweeps_racing_send_each_escalation_once(live_db, make_workspace, make_user):
    people = [make_user(f"racer{n}", email=f"racer{n}@datafi.test") for n in range(3)]
    team = make_workspace("Race", users=people)
    escalate_rule()
    events = [emit(LOST, workspace=team, payload={"datasource_name": str(n)})
              for n in range(20)]
    for event in events:
        event_route(event_id=event.pk)
    later = timezone.now() + timedelta(hours=1)

    from tests.support import run_concurrently
    sent = run_concurrently(lambda: escalations_send(now=later, batch_size=7), times=4)

    assert sum(sent) <= 20
    while escalations_send(now=later):
        pass
    assert Delivery.objects.filter(purpose="escalation").count() == 20 * 3
    assert set(Escalation.objects.values_list("status", flat=True)) == {"sent"}


def test_a_resolution_racing_an_acknowledgement_keeps_both_and_escalates_nothing(
        live_db, make_workspace, make_user):
    person = make_user("racer", email="racer@datafi.test")
    team = make_workspace("Race", users=[person])
    escalate_rule()
    event = emit(LOST, workspace=team, payload={"datasource_name": "W"})
    event_route(event_id=event.pk)
    mine = notification_of(person, event)
    api = api_client_for(person)
    calls = iter([lambda: api.post(f"/api/notifications/{mine.pk}/acknowledge/"),
                  lambda: api.post(f"/api/events/{event.pk}/resolve/")])

    from tests.support import run_concurrently
    answers = run_concurrently(lambda: next(calls)(), times=2)

    assert sorted(a.status_code for a in answers) == [200, 200]
    event.refresh_from_db()
    assert event.acknowledged_at and event.resolved_at
    assert escalations_send(now=timezone.now() + timedelta(hours=1)) == 0
    assert Escalation.objects.get(event=event).status == "cancelled"


# --- resolve --------------------------------------------------------------------------------

def test_connection_established_resolves_the_same_sources_lost_connection(team):
    warehouse = emit_and_route(LOST, team, datasource_name="Warehouse")
    other = emit_and_route(LOST, team, datasource_name="Lake")

    back = emit_and_route(BACK, team, datasource_name="Warehouse")

    warehouse.refresh_from_db()
    other.refresh_from_db()
    assert warehouse.resolved_by_event == back.pk and warehouse.resolved_at is not None
    assert other.resolved_at is None
    listed = {n["event_id"]: n for n in api_client_for(team.people[0]).get(
        "/api/notifications/").json()["results"]}
    assert listed[str(warehouse.pk)]["resolved_at"] is not None
    assert listed[str(other.pk)]["resolved_at"] is None


def test_resolving_by_hand_is_for_staff_and_recipients(team, make_user, staff_api):
    event = emit_and_route(LOST, team, datasource_name="Warehouse")

    assert api_client_for(make_user("stranger")).post(
        f"/api/events/{event.pk}/resolve/").status_code == 404
    answer = api_client_for(team.people[1]).post(f"/api/events/{event.pk}/resolve/")
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["resolved_now"], answer.json()["resolved_by"]) == (True, "ops1")
    again = staff_api.post(f"/api/events/{event.pk}/resolve/").json()
    assert (again["resolved_now"], again["resolved_by"]) == (False, "ops1")


def test_pagerduty_and_slack_are_told_of_the_resolution_and_datafi_endpoints_are_not(
        team, receiver, private_networks):
    server = receiver()
    hooks = {format: webhook_endpoint_save(values={
        "name": format, "url": server.url(f"/{format}"), "secret": "s3cret-value",
        "format": format, **({"routing_key": "R0UTING"} if format == "pagerduty" else {})})
        for format in ("pagerduty", "slack", "datafi")}
    RoutingRule.objects.create(event_type=EventType.objects.get(key=LOST),
                               channels=["in_app", "webhook"])
    lost = emit_and_route(LOST, team, datasource_name="Warehouse")
    assert send_all(Delivery.objects.filter(event=lost, channel="webhook")) == ["delivered"] * 3
    trigger = next(r.json() for r in server.received if r.path == "/pagerduty")

    api_client_for(team.people[0]).post(f"/api/events/{lost.pk}/resolve/")

    told = Delivery.objects.filter(event=lost, purpose="resolution")
    assert sorted(told.values_list("target", flat=True)) == sorted(
        [str(hooks["pagerduty"].pk), str(hooks["slack"].pk)])
    assert send_all(told) == ["delivered"] * 2
    resolve = [r.json() for r in server.received if r.path == "/pagerduty"][-1]
    assert resolve == {"routing_key": "R0UTING", "event_action": "resolve",
                       "dedup_key": trigger["dedup_key"]}
    slack = [r.json() for r in server.received if r.path == "/slack"][-1]
    assert slack["text"] == "Resolved: Connection lost: Warehouse"
    assert len([r for r in server.received if r.path == "/datafi"]) == 1


@pytest.mark.parametrize("asked", [True, False])
def test_emails_get_a_resolved_follow_up_when_the_rule_asks(team, smtp_server, email_on,
                                                            asked):
    server = smtp_server()
    email_on(server)
    RoutingRule.objects.create(event_type=EventType.objects.get(key=LOST),
                               channels=["in_app", "email"], notify_resolved=asked)
    lost = emit_and_route(LOST, team, datasource_name="Warehouse")
    send_all(Delivery.objects.filter(event=lost, channel="email"))

    emit_and_route(BACK, team, datasource_name="Warehouse")

    follow_ups = Delivery.objects.filter(event=lost, purpose="resolution")
    assert follow_ups.count() == (2 if asked else 0)
    send_all(follow_ups)
    resolved = [m for m in server.received if m.message["Subject"].startswith("Resolved:")]
    assert len(resolved) == (2 if asked else 0)
    if asked:
        assert resolved[0].message["Subject"] == "Resolved: Connection lost: Warehouse"
        assert "was resolved at" in resolved[0].text()


# --- inhibit --------------------------------------------------------------------------------

def inhibit_queries_by_datasource(staff_api):
    answer = staff_api.post("/api/inhibit-rules/", {
        "source_event_type": LOST, "target_categories": ["queries"],
        "equal": ["datasource_name"], "comment": "queries fail while their source is down"},
        format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def test_an_unresolved_outage_inhibits_its_query_failures_until_it_is_resolved(
        team, staff_api, staff):
    rule = inhibit_queries_by_datasource(staff_api)
    assert rule["created_by"] == staff.username
    outage = emit_and_route(LOST, team, datasource_name="Warehouse")

    noise = emit_and_route(QUERY_FAILED, team, query_name="q", datasource_name="Warehouse")
    elsewhere = emit_and_route(QUERY_FAILED, team, query_name="q", datasource_name="Lake")

    noise.refresh_from_db()
    elsewhere.refresh_from_db()
    assert (noise.status, noise.inhibited_by) == ("inhibited", outage.pk)
    assert not Notification.objects.filter(event=noise).exists()
    assert not Delivery.objects.filter(event=noise).exists()
    assert elsewhere.status == "routed"
    explained = staff_api.get(f"/api/events/{noise.pk}/explain/",
                              {"user": team.people[0].username}).json()
    assert {d["decision"] for d in explained["channels"].values()} == {"inhibited"}
    assert str(outage.pk) in " ".join(d["detail"] for d in explained["channels"].values())

    emit_and_route(BACK, team, datasource_name="Warehouse")
    after = emit_and_route(QUERY_FAILED, team, query_name="q", datasource_name="Warehouse")
    after.refresh_from_db()
    assert after.status == "routed"


@pytest.mark.parametrize(("body", "field"), [
    ({"source_event_type": "nope.nope", "target_categories": ["queries"]}, "source_event_type"),
    ({"source_event_type": LOST}, "target_event_types"),
    ({"source_event_type": LOST, "target_event_types": ["query.nope"]}, "target_event_types"),
    ({"source_event_type": LOST, "target_categories": ["nope"]}, "target_categories"),
    ({"source_event_type": LOST, "target_categories": ["queries"], "equal": [""]}, "equal"),
    ({"source_event_type": LOST, "target_categories": ["queries"], "colour": 1}, "colour"),
])
def test_a_bad_inhibit_rule_is_refused_naming_the_field(staff_api, body, field):
    answer = staff_api.post("/api/inhibit-rules/", body, format="json")

    assert answer.status_code == 400
    assert field in str(answer.json())
    assert not InhibitRule.objects.exists()


def test_inhibit_rules_are_staffs(api):
    assert api.get("/api/inhibit-rules/").status_code == 403


def test_routing_with_inhibit_rules_costs_the_same_queries_for_bigger_batches(
        postgres, db, make_workspace, make_user, staff_api):
    inhibit_queries_by_datasource(staff_api)
    staff_api.post("/api/inhibit-rules/", {"source_event_type": "query.long_running_query",
                                            "target_event_types": [QUERY_FAILED]},
                   format="json")

    def route_batch(members: int, events: int) -> int:
        workspace = make_workspace(f"ws{members}x{events}", members=members)
        emit_and_route(LOST, workspace, datasource_name="0")
        batch = [emit(QUERY_FAILED, workspace=workspace,
                      payload={"query_name": "q", "datasource_name": str(n % 2)})
                 for n in range(events)]
        locked = list(Event.objects.select_related("event_type__category")
                      .filter(pk__in=[e.pk for e in batch]))
        with CaptureQueriesContext(connection) as queries:
            events_route(locked, token=None)
        assert Event.objects.filter(pk__in=[e.pk for e in batch], status="inhibited").exists()
        return len(queries)

    route_batch(1, 2)  # warm
    assert route_batch(2, 2) == route_batch(10, 8)


# --- settings on the event type and the rule -----------------------------------------------

def test_event_types_say_what_they_resolve_and_refuse_unknown_types(staff_api):
    url = f"/api/event-types/{BACK}/"
    assert staff_api.get(url).json()["resolves"] == [LOST]

    refused = staff_api.patch(url, {"resolves": ["data_source.nope"]}, format="json")
    assert refused.status_code == 400 and "resolves" in refused.json()
    assert staff_api.patch(url, {"resolves": [BACK]}, format="json").status_code == 400
    assert staff_api.patch(url, {"resolves": []}, format="json").json()["resolves"] == []


def test_escalation_is_set_over_rest_and_checked(staff_api):
    body = {"event_type": LOST, "channels": ["in_app"],
            "escalate": {"after_minutes": 10, "channels": ["email", "webhook"],
                         "emails": ["oncall@datafi.test"]}, "notify_resolved": True}
    created = staff_api.post("/api/routing-rules/", body, format="json")
    assert created.status_code == 201, created.json()
    assert (created.json()["escalate"], created.json()["notify_resolved"]) == (
        body["escalate"], True)

    for escalate in ({"after_minutes": 0, "channels": ["email"]},
                     {"after_minutes": 5, "channels": ["in_app"]},
                     {"after_minutes": 5, "channels": ["email"], "emails": ["nope"]},
                     {"after_minutes": 5, "channels": ["email"], "colour": "red"}):
        refused = staff_api.patch(f"/api/routing-rules/{created.json()['id']}/",
                                  {"escalate": escalate}, format="json")
        assert refused.status_code == 400, escalate
    cleared = staff_api.patch(f"/api/routing-rules/{created.json()['id']}/",
                              {"escalate": None}, format="json")
    assert cleared.json()["escalate"] is None


def test_one_batch_leaves_each_event_in_its_own_state(team, staff_api):
    inhibit_queries_by_datasource(staff_api)
    outage = emit_and_route(LOST, team, datasource_name="Warehouse")
    batch = [emit(QUERY_FAILED, workspace=team,
                  payload={"query_name": "q", "datasource_name": name})
             for name in ("Warehouse", "Lake")]
    locked = list(Event.objects.select_related("event_type__category")
                  .filter(pk__in=[e.pk for e in batch]))

    events_route(locked, token=None)

    states = dict(Event.objects.filter(pk__in=[e.pk for e in batch])
                  .values_list("payload__datasource_name", "status"))
    assert states == {"Warehouse": "inhibited", "Lake": "routed"}
    assert Event.objects.get(pk=batch[0].pk).inhibited_by == outage.pk
    assert Event.objects.get(pk=batch[1].pk).inhibited_by is None
