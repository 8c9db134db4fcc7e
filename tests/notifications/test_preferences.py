"""Preferences: GET|PUT /api/preferences/ and routing that honours them on each channel,
immediate and in digests, with critical events delivered whatever the choice. Emails go
to a real SMTP server on loopback; List-Unsubscribe points members at the preferences page.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events import emit
from events.models import Category, EventType
from events.services.catalog import event_type_update
from notifications.deliveries.send import Outcome, delivery_send
from notifications.models import Delivery, Notification, NotificationPreference, RoutingRule
from notifications.routing.route import event_route
from notifications.services.digests import digest_flush
from tests.support import api_client_for

URL = "/api/preferences/"
ALL_ON = {"in_app": True, "email": True}


def route(event_type, workspace, **payload):
    event = emit(event_type, workspace=workspace, payload=payload)
    event_route(event_id=event.pk)
    return event


# --- the API --------------------------------------------------------------------------------

def test_everything_is_on_until_chosen_and_critical_is_always_delivered(api):
    body = api.get(URL).json()
    assert body == {
        "categories": {slug: ALL_ON for slug in
                       ["data_sources", "queries", "users", "policies", "ai_ml", "system"]},
        "channels": [{"name": "in_app", "label": "In-app"}, {"name": "email", "label": "Email"}],
        "timezone": "UTC",
        "quiet_hours": None,
        "critical_always_delivered": True,
    }
    assert list(body["categories"]) == list(
        Category.objects.order_by("position").values_list("slug", flat=True))


def test_put_replaces_the_categories_given_and_keeps_the_others(api, user, make_user):
    api.put(URL, {"categories": {"users": {"in_app": False, "email": False}}}, format="json")
    response = api.put(URL, {"categories": {"queries": {"in_app": True, "email": False}}},
                       format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["critical_always_delivered"] is True
    assert body["categories"]["queries"] == {"in_app": True, "email": False}
    assert body["categories"]["users"] == {"in_app": False, "email": False}  # kept
    assert body["categories"]["system"] == ALL_ON
    assert api.get(URL).json() == body
    # A channel left out of a given category goes back to the default: on.
    body = api.put(URL, {"categories": {"users": {"email": False}}}, format="json").json()
    assert body["categories"]["users"] == {"in_app": True, "email": False}
    # Only the signed-in user's choices: someone else's are untouched.
    other = api_client_for(make_user("bob"))
    assert other.get(URL).json()["categories"]["queries"] == ALL_ON


@pytest.mark.parametrize("body, named", [
    ({"categories": {"quereis": {"email": False}}}, "'quereis'"),
    ({"categories": {"queries": {"sms": False}}}, "'sms'"),
    ({"categories": {"queries": {"webhook": False}}}, "'webhook'"),
    ({"categories": {"queries": {"email": "no"}}}, "'email'"),
    ({"categories": {"queries": ["email"]}}, "dictionary"),
    ({"categories": "queries"}, "dictionary"),
    ({}, "Give categories"),
])
def test_an_unknown_category_or_channel_is_a_400_naming_it_and_changes_nothing(
        api, user, body, named):
    api.put(URL, {"categories": {"users": {"email": False}}}, format="json")

    response = api.put(URL, {**body}, format="json")

    assert response.status_code == 400
    assert named in str(response.json()["categories"])
    assert list(NotificationPreference.objects.filter(user=user).values_list(
        "category__slug", "channel", "enabled")) == [("users", "email", False)]


def test_a_mixed_put_with_one_unknown_category_writes_nothing(api, user):
    response = api.put(URL, {"categories": {"queries": {"email": False},
                                            "nope": {"email": False}}}, format="json")
    assert response.status_code == 400
    assert "'nope'" in response.json()["categories"][0]
    assert not NotificationPreference.objects.exists()


def test_muting_a_category_with_critical_events_is_accepted(api):
    response = api.put(URL, {"categories": {"data_sources": {"in_app": False, "email": False}}},
                       format="json")
    assert response.status_code == 200
    assert response.json()["critical_always_delivered"] is True


def test_preferences_need_a_signed_in_user(client):
    assert client.get(URL).status_code in (401, 403)


# --- routing honours them -------------------------------------------------------------------

@pytest.fixture
def queries_by_email(db):
    """Every query event goes to the bell and by email (a category rule)."""
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"),
                               channels=["in_app", "email"])


@pytest.fixture
def team(make_workspace, make_user):
    alice, carol = make_user("alice"), make_user("carol")
    workspace = make_workspace(users=[alice, carol])
    api_client_for(alice).put(URL, {"categories": {"queries": {"in_app": True, "email": False}}},
                              format="json")
    return workspace, alice, carol


def emails_to(event) -> set[str]:
    """Where the event's email goes (not the copies the preferences skipped)."""
    return set(Delivery.objects.filter(event=event, channel="email").exclude(
        status="skipped").values_list("target", flat=True))


def test_email_off_for_queries_stops_query_emails_for_that_user_only(
        team, queries_by_email, smtp_server, email_on, settings):
    settings.DATAFI_APP_URL = "https://datafi.example.com/"
    workspace, alice, carol = team
    server = smtp_server()
    email_on(server)

    failed = route("query.query_failed", workspace, query_name="Daily KPIs")  # high: immediate
    other = route("data_source.connection_lost", workspace, datasource_name="Warehouse")

    assert emails_to(failed) == {"carol@example.com"}
    assert emails_to(other) == {"alice@example.com", "carol@example.com"}  # other category
    # The bell is another channel: alice still sees the query there.
    assert set(Notification.objects.filter(event=failed).values_list("user__username",
                                                                     flat=True)) == {
        "alice", "carol"}
    for row in Delivery.objects.filter(channel="email", event=failed).exclude(status="skipped"):
        assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED
    assert [r.rcpt_tos for r in server.received] == [["carol@example.com"]]
    message = server.received[0].message
    assert message["List-Unsubscribe"] == "<https://datafi.example.com/preferences/>"
    assert "https://datafi.example.com/preferences/" in server.received[0].text()


def test_email_off_for_queries_keeps_query_events_out_of_that_users_digest(
        team, queries_by_email, smtp_server, email_on):
    workspace, alice, carol = team
    server = smtp_server()
    email_on(server)
    for name in ("Nightly revenue", "Churn model"):
        route("query.long_running_query", workspace, query_name=name)  # medium: 5 min digest
    route("user.role_changed", workspace, email="dana@example.com")  # medium, users: no email

    digest_flush(bucket="5m")

    sends = list(Delivery.objects.filter(kind="digest", channel="email"))
    assert [d.target for d in sends] == ["carol@example.com"]
    assert delivery_send(delivery_id=sends[0].pk) == Outcome.DELIVERED
    assert [r.rcpt_tos for r in server.received] == [["carol@example.com"]]
    assert server.received[0].message["Subject"] == "Datafi digest: 2 notifications (medium)"
    # In the bell both get their digests: alice chose email off, not in-app.
    assert Notification.objects.filter(kind="digest", user=alice).count() == 1


def test_a_critical_query_event_still_reaches_a_user_who_turned_queries_off(
        team, queries_by_email, smtp_server, email_on):
    workspace, alice, carol = team
    api_client_for(alice).put(URL, {"categories": {"queries": {"in_app": False,
                                                               "email": False}}}, format="json")
    event_type_update(event_type=EventType.objects.get(key="query.query_timeout"),
                      priority_override="critical")
    server = smtp_server()
    email_on(server)

    critical = route("query.query_timeout", workspace, query_name="Warehouse load")
    high = route("query.query_failed", workspace, query_name="Daily KPIs")

    assert emails_to(critical) == {"alice@example.com", "carol@example.com"}
    assert Notification.objects.filter(event=critical, user=alice).exists()
    assert emails_to(high) == {"carol@example.com"}
    assert not Notification.objects.filter(event=high, user=alice).exists()
    for row in Delivery.objects.filter(channel="email", event=critical):
        assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "alice@example.com", "carol@example.com"]


def test_in_app_off_for_a_category_keeps_it_out_of_the_bell_and_its_digests(
        make_workspace, make_user):
    alice, carol = make_user("alice"), make_user("carol")
    workspace = make_workspace(users=[alice, carol])
    api_client_for(alice).put(URL, {"categories": {"users": {"in_app": False}}}, format="json")

    route("user.role_changed", workspace, email="dana@example.com")  # medium: digest
    digest_flush(bucket="5m")

    assert list(Notification.objects.values_list("user__username", flat=True)) == ["carol"]


def test_a_distribution_list_copy_of_a_members_address_follows_the_members_choice(
        team, db):
    workspace, alice, carol = team
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"),
                               channels=["email"],
                               extra_emails=["ALICE@example.com", "oncall@example.com"])

    event = route("query.query_failed", workspace, query_name="Daily KPIs")

    assert emails_to(event) == {"carol@example.com", "oncall@example.com"}
    assert Delivery.objects.get(event=event, target="oncall@example.com").user_id is None


def test_preferences_cost_routing_one_query_whatever_the_audience(make_workspace, make_user):
    def queries_to_route(members):
        workspace = make_workspace(f"ws{members}", members=members)
        for person in workspace.people[::2]:
            NotificationPreference.objects.create(
                user=person, category=Category.objects.get(slug="queries"), channel="email",
                enabled=False)
        event = emit("query.query_failed", workspace=workspace, payload={})
        with CaptureQueriesContext(connection) as queries:
            event_route(event_id=event.pk)
        assert len(emails_to(event)) == members // 2
        return len(queries)

    queries_to_route(2)  # the first route of a process reads the routing configuration
    assert queries_to_route(4) == queries_to_route(40)


def test_an_email_to_a_distribution_list_has_no_unsubscribe_link(
        make_workspace, smtp_server, email_on, db):
    workspace = make_workspace()
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"),
                               channels=["email"], extra_emails=["oncall@example.com"])
    server = smtp_server()
    email_on(server)

    event = route("query.query_failed", workspace, query_name="Daily KPIs")

    assert delivery_send(delivery_id=Delivery.objects.get(event=event).pk) == Outcome.DELIVERED
    assert server.received[0].message["List-Unsubscribe"] is None
