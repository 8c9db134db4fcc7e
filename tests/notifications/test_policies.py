"""The delivery policy stage: an ordered list of one-job modules between the audience and
the rows; their decisions recorded where the delivery log (and explain) reads them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events import emit
from events.models import Category, Event, EventType
from notifications.models import Delivery, Notification, NotificationPreference, RoutingRule
from notifications.policies import active_policies
from notifications.routing.route import event_route, events_plan, events_route
from tests.support import api_client_for

DEFAULT_POLICIES = [
    "notifications.policies.disabled.EventTypeDisabled",
    "notifications.policies.silences.Silences",
    "notifications.policies.inhibition.Inhibition",
    "notifications.policies.grouping.Grouping",
    "notifications.policies.resolution.Resolution",
    "notifications.policies.escalation.Escalations",
    "notifications.policies.critical.CriticalAlways",
    "notifications.policies.mutes.Mutes",
    "notifications.policies.preferences.Preferences",
    "notifications.policies.quiet_hours.QuietHours",
]
WITH_TEST_POLICIES = [*DEFAULT_POLICIES,
                      "tests.notifications.policies_for_tests.NightOwlsHoldEmail",
                      "tests.notifications.policies_for_tests.MuteEverythingForUsers"]


@pytest.fixture
def test_policies(settings):
    settings.DATAFI_ROUTING_POLICIES = WITH_TEST_POLICIES
    assert [type(p).__name__ for p in active_policies()][-2:] == [
        "NightOwlsHoldEmail", "MuteEverythingForUsers"]


@pytest.fixture
def team(make_workspace, make_user):
    people = [make_user(name) for name in ("alice", "owl1", "mute1")]
    return make_workspace("Ops", users=people)


def test_the_default_list_is_the_setting_in_order(settings):
    assert settings.DATAFI_ROUTING_POLICIES == DEFAULT_POLICIES
    assert [p.name for p in active_policies()] == [
        "event_type_disabled", "silences", "inhibition", "grouping", "resolution", "escalation",
        "critical_always", "mutes", "preferences", "quiet_hours"]


def test_a_policy_added_by_configuration_holds_and_drops_and_says_why(
        db, team, test_policies, staff_api):
    alice, owl, muted = team.people
    event = emit("query.query_failed", workspace=team, payload={"query_name": "q"})  # high

    result = event_route(event_id=event.pk)

    rows = {(d.channel, d.user_id): d for d in Delivery.objects.filter(event=event)}
    held = rows[("email", owl.pk)]
    assert (held.status, held.decision, held.reason) == ("held", "held", "An owl sleeps by day.")
    assert held.release_at is not None
    for channel in ("in_app", "email"):
        skipped = rows[(channel, muted.pk)]
        assert (skipped.status, skipped.decision) == ("skipped", "muted")
    assert rows[("email", alice.pk)].status == "pending"
    assert set(Notification.objects.filter(event=event).values_list("user_id", flat=True)) == {
        alice.pk, owl.pk}
    assert result.channels == {"in_app": 2, "email": 1}
    event.refresh_from_db()
    assert (event.status, event.routed_channels, event.routing_source) == (
        "routed", ["in_app", "email"], "priority_default")
    listed = staff_api.get("/api/deliveries/", {"status": "held"}).json()["results"]
    assert [(d["user_id"], d["decision"], d["reason"]) for d in listed] == [
        (owl.pk, "held", "An owl sleeps by day.")]
    assert listed[0]["release_at"]


def test_users_choices_never_hold_or_drop_a_critical_event(db, team, test_policies):
    event = emit("data_source.connection_lost", workspace=team,
                 payload={"datasource_name": "x"})

    event_route(event_id=event.pk)

    statuses = set(Delivery.objects.filter(event=event).values_list("status", flat=True))
    assert statuses == {"pending"}  # no held, no skipped
    assert Notification.objects.filter(event=event).count() == 3


def test_the_first_policy_to_decide_wins(db, team, test_policies):
    owl = team.people[1]
    NotificationPreference.objects.create(user=owl, channel="email", enabled=False,
                                          category=Category.objects.get(slug="queries"))
    event = emit("query.query_failed", workspace=team, payload={"query_name": "q"})

    event_route(event_id=event.pk)

    row = Delivery.objects.get(event=event, channel="email", user=owl)
    assert (row.status, row.decision) == ("skipped", "preference_off")  # before night_owls


def test_an_event_type_disabled_before_routing_delivers_nothing(db, team):
    event = emit("query.query_failed", workspace=team, payload={"query_name": "q"})
    EventType.objects.filter(key="query.query_failed").update(enabled=False)

    result = event_route(event_id=event.pk)

    assert result.skipped and result.channels == {}
    event.refresh_from_db()
    assert (event.status, event.routed_channels) == ("suppressed", [])
    assert not Delivery.objects.filter(event=event).exists()
    assert not Notification.objects.filter(event=event).exists()


def test_policies_cost_a_constant_number_of_queries_per_batch(
        postgres, db, make_workspace, make_user, test_policies):
    """PostgreSQL's: SQLite splits an insert of more than 999 values."""
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"),
                               channels=["in_app", "email", "webhook"])

    def route_batch(members: int, events: int) -> int:
        people = [make_user(f"{prefix}{members}x{n}") for n in range(members)
                  for prefix in ("a", "owl", "mute")]
        workspace = make_workspace(f"ws{members}", users=people)
        for person in people[::2]:
            NotificationPreference.objects.create(
                user=person, category=Category.objects.get(slug="queries"), channel="email",
                enabled=False)
        batch = [emit("query.long_running_query", workspace=workspace,
                      payload={"query_name": str(n)}) for n in range(events)]
        locked = list(Event.objects.select_related("event_type__category")
                      .filter(pk__in=[e.pk for e in batch]))
        with CaptureQueriesContext(connection) as queries:
            events_route(locked, token=None)
        return len(queries)

    route_batch(1, 1)  # warm
    assert route_batch(2, 1) == route_batch(10, 3)


def test_a_dry_run_decides_the_same_and_writes_nothing(db, team, test_policies,
                                                       django_assert_num_queries):
    event = emit("query.query_failed", workspace=team, payload={"query_name": "q"})
    locked = [Event.objects.select_related("event_type__category").get(pk=event.pk)]

    plan = events_plan(locked, token=None)

    email = next(route for route in plan.events[0].routes if route.channel == "email")
    decided = {r.user_id: email.verdicts.get(r.key) for r in email.recipients}
    alice, owl, muted = team.people
    assert decided[alice.pk] is None
    assert (decided[owl.pk].decision, decided[muted.pk].decision) == ("held", "muted")
    assert not Delivery.objects.exists() and not Notification.objects.exists()
    event.refresh_from_db()
    assert event.status == "pending"


def test_the_api_lists_what_a_preference_skipped(db, team, staff):
    alice = team.people[0]
    NotificationPreference.objects.create(user=alice, channel="email", enabled=False,
                                          category=Category.objects.get(slug="queries"))
    event = emit("query.query_failed", workspace=team, payload={"query_name": "q"})
    event_route(event_id=event.pk)

    listed = api_client_for(staff).get("/api/deliveries/", {"status": "skipped"}).json()
    assert [(d["user_id"], d["channel"], d["decision"]) for d in listed["results"]] == [
        (alice.pk, "email", "preference_off")]
    assert "switched off in the user's preferences" in listed["results"][0]["reason"]
