"""Snooze (one notification, back unread later) and mutes (a user's own, time-boxed)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import emit
from events.models import Category, EventType
from notifications.models import Delivery, Mute, Notification
from notifications.routing.route import event_route
from notifications.services.attention import snoozed_wake
from tests.support import api_client_for, emit_and_route

LIST, COUNT = "/api/notifications/", "/api/notifications/unread-count/"


@pytest.fixture
def bell(make_workspace, user):
    workspace = make_workspace("Ops", users=[user])
    for name in ("a", "b"):
        emit_and_route("query.query_failed", workspace, query_name=name)
    return api_client_for(user), workspace


# --- snooze ---------------------------------------------------------------------------------

def test_a_snoozed_notification_leaves_the_count_and_the_list_and_comes_back_unread(bell):
    api, _ = bell
    first, second = api.get(LIST).json()["results"]
    api.post(f"{LIST}{second['id']}/read/")

    answer = api.post(f"{LIST}{second['id']}/snooze/", {"minutes": 60}, format="json")

    assert answer.status_code == 200
    until = answer.json()["snoozed_until"]
    assert until is not None
    assert [n["id"] for n in api.get(LIST).json()["results"]] == [first["id"]]
    assert api.get(COUNT).json()["count"] == 1
    snoozed = api.get(LIST, {"snoozed": "true"}).json()["results"]
    assert [(n["id"], n["snoozed_until"]) for n in snoozed] == [(second["id"], until)]

    assert snoozed_wake(now=timezone.now()) == 0  # not yet
    assert snoozed_wake(now=timezone.now() + timedelta(minutes=61)) == 1

    back = api.get(f"{LIST}{second['id']}/").json()
    assert (back["snoozed_until"], back["is_read"]) == (None, False)
    assert api.get(COUNT).json()["count"] == 2


def test_snooze_until_a_time_and_unsnooze(bell):
    api, _ = bell
    target = api.get(LIST).json()["results"][0]["id"]
    until = (timezone.now() + timedelta(days=1)).replace(microsecond=0)

    api.post(f"{LIST}{target}/snooze/", {"until": until.isoformat()}, format="json")
    assert Notification.objects.get(pk=target).snoozed_until == until

    answer = api.post(f"{LIST}{target}/unsnooze/")
    assert answer.status_code == 200 and answer.json()["snoozed_until"] is None
    assert api.get(COUNT).json()["count"] == 2


def test_snoozing_changes_the_bells_etag(bell):
    api, _ = bell
    before = api.get(COUNT)
    target = api.get(LIST).json()["results"][0]["id"]
    api.post(f"{LIST}{target}/snooze/", {"minutes": 5}, format="json")

    after = api.get(COUNT, HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200 and after.json()["count"] == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"minutes": 0}, "minutes"),
    ({"minutes": 43201}, "minutes"),
    ({}, "minutes"),
    ({"minutes": 5, "until": "2030-01-01T00:00:00Z"}, "minutes"),
    ({"until": "2000-01-01T00:00:00Z"}, "until"),
    ({"until": "2099-01-01T00:00:00Z"}, "until"),
    ({"until": "tomorrow"}, "until"),
], ids=["zero", "over-30-days", "nothing", "both", "past", "too-far", "not-a-time"])
def test_a_bad_snooze_is_a_400_naming_the_field(bell, body, field):
    api, _ = bell
    target = api.get(LIST).json()["results"][0]["id"]

    answer = api.post(f"{LIST}{target}/snooze/", body, format="json")

    assert answer.status_code == 400 and field in answer.json()
    assert Notification.objects.get(pk=target).snoozed_until is None


def test_nobody_snoozes_another_users_notification(bell, make_user):
    api, _ = bell
    target = api.get(LIST).json()["results"][0]["id"]

    answer = api_client_for(make_user("mallory")).post(f"{LIST}{target}/snooze/",
                                                       {"minutes": 5}, format="json")

    assert answer.status_code == 404


# --- mutes ----------------------------------------------------------------------------------

def test_a_mute_keeps_its_kind_from_the_user_on_every_channel_until_it_ends(
        make_workspace, make_user):
    quiet, other = make_user("quiet"), make_user("other")
    workspace = make_workspace("Ops", users=[quiet, other])
    api = api_client_for(quiet)

    created = api.post("/api/mutes/", {"event_type": "query.query_failed"}, format="json")
    assert created.status_code == 201
    assert created.json()["event_type"] == "query.query_failed"

    event = emit_and_route("query.query_failed", workspace, query_name="q")  # high
    assert set(Notification.objects.filter(event=event).values_list("user__username",
                                                                     flat=True)) == {"other"}
    skipped = Delivery.objects.get(event=event, user=quiet, channel="email")
    assert (skipped.status, skipped.decision) == ("skipped", "muted")
    assert "muted this event type" in skipped.reason
    # Another kind reaches them; a critical event always does.
    timeout_event = emit_and_route("query.query_timeout", workspace, query_name="q")
    assert Notification.objects.filter(event=timeout_event, user=quiet).exists()
    Mute.objects.create(user=quiet, category=Category.objects.get(slug="data_sources"))
    critical = emit_and_route("data_source.connection_lost", workspace, datasource_name="x")
    assert Notification.objects.filter(event=critical, user=quiet).exists()

    # Time-boxed: once it ends, the kind reaches them again.
    Mute.objects.filter(event_type__key="query.query_failed").update(
        until=timezone.now() - timedelta(seconds=1))
    later = emit_and_route("query.query_failed", workspace, query_name="q2")
    assert Notification.objects.filter(event=later, user=quiet).exists()


def test_mutes_are_listed_and_removed_by_their_owner_only(make_workspace, make_user):
    owner, mallory = make_user("owner"), make_user("mallory")
    workspace = make_workspace("Ops", users=[owner])
    api = api_client_for(owner)
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    ids = [api.post("/api/mutes/", body, format="json").json()["id"] for body in (
        {"category": "queries", "until": until.isoformat()},
        {"workspace_id": workspace.public_id})]

    listed = api.get("/api/mutes/").json()
    assert {(m["category"], m["workspace_id"]) for m in listed} == {
        ("queries", None), (None, workspace.public_id)}
    assert api_client_for(mallory).get("/api/mutes/").json() == []
    assert api_client_for(mallory).delete(f"/api/mutes/{ids[0]}/").status_code == 404
    assert api.delete(f"/api/mutes/{ids[0]}/").status_code == 204
    assert list(Mute.objects.values_list("pk", flat=True)) == [ids[1]]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "event_type"),
    ({"event_type": "query.query_failed", "category": "queries"}, "event_type"),
    ({"event_type": "query.nope"}, "event_type"),
    ({"category": "nope"}, "category"),
    ({"workspace_id": "ws_not_mine"}, "workspace_id"),
    ({"category": "queries", "until": "2000-01-01T00:00:00Z"}, "until"),
    ({"category": "queries", "colour": "red"}, "colour"),
], ids=["nothing", "two", "unknown-type", "unknown-category", "not-a-member", "past",
        "unknown-field"])
def test_a_bad_mute_is_a_400_naming_the_field(make_workspace, make_user, body, field):
    not_mine = make_workspace("Not mine", members=1)  # a workspace the user is not in
    if body.get("workspace_id") == "ws_not_mine":
        body = {"workspace_id": not_mine.public_id}
    user = make_user("u")
    answer = api_client_for(user).post("/api/mutes/", body, format="json")

    assert answer.status_code == 400 and field in answer.json(), answer.json()
    assert not Mute.objects.exists()


def test_mutes_cost_routing_a_constant_number_of_queries(postgres, make_workspace, make_user):
    """PostgreSQL's (SQLite splits large inserts): 1 member with no mute, or 30 with five
    mutes each, route in the same number of queries."""
    runs = iter(range(10))

    def queries(members: int, mutes: int) -> int:
        run = next(runs)
        people = [make_user(f"m{run}-{n}") for n in range(members)]
        workspace = make_workspace(f"ws{run}", users=people)
        kinds = list(EventType.objects.exclude(key="query.query_failed")[:mutes])
        Mute.objects.bulk_create(Mute(user=p, event_type=k) for p in people for k in kinds)
        event = emit("query.query_failed", workspace=workspace, payload={"query_name": "q"})
        with CaptureQueriesContext(connection) as captured:
            event_route(event_id=event.pk)
        return len(captured)

    queries(1, 0)  # warm
    assert queries(1, 0) == queries(30, 5)
