"""Silences: an admin's matchers catch events while active; such an event is kept as
``silenced`` (with the silence's id) and delivered on no channel, whatever its priority."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from events.models import Event
from notifications.models import Delivery, Notification, Silence
from tests.support import api_client_for, emit_and_route

URL = "/api/silences/"


def later(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


@pytest.fixture
def team(make_workspace):
    return make_workspace("Ops", members=2)


def test_a_silence_stops_matching_events_of_any_priority(team, staff_api, staff):
    created = staff_api.post(URL, {
        "matchers": {"event_type": "data_source.connection_lost", "workspace_id": team.public_id,
                     "payload": {"datasource_name": "Staging"}},
        "ends_at": later(hours=2), "comment": "Staging is being rebuilt"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["created_by"], body["state"]) == (staff.username, "active")

    caught = emit_and_route("data_source.connection_lost", team, datasource_name="Staging")
    other = emit_and_route("data_source.connection_lost", team, datasource_name="Prod")

    caught.refresh_from_db()
    assert (caught.status, caught.silenced_by) == ("silenced", body["id"])
    assert not Notification.objects.filter(event=caught).exists()
    assert not Delivery.objects.filter(event=caught).exists()
    assert Notification.objects.filter(event=other).count() == 2


def test_expiring_a_silence_lets_events_through_again(team, staff_api):
    silence = staff_api.post(URL, {"matchers": {"category": "queries"}, "ends_at": later(days=1),
                                   "comment": "Migration"}, format="json").json()
    assert emit_and_route("query.query_failed", team, query_name="q").status == "pending"
    assert Event.objects.filter(status="silenced").count() == 1

    expired = staff_api.post(f"{URL}{silence['id']}/expire/")
    assert expired.status_code == 200 and expired.json()["state"] == "expired"
    assert staff_api.post(f"{URL}{silence['id']}/expire/").status_code == 409

    after = emit_and_route("query.query_failed", team, query_name="q")
    after.refresh_from_db()
    assert after.status == "routed" and Notification.objects.filter(event=after).exists()


def test_an_upcoming_silence_does_not_apply_yet(team, staff_api):
    staff_api.post(URL, {"matchers": {"category": "queries"}, "starts_at": later(hours=1),
                         "ends_at": later(hours=2), "comment": "Tonight's window"},
                   format="json")

    event = emit_and_route("query.query_failed", team, query_name="q")

    event.refresh_from_db()
    assert event.status == "routed"


@pytest.mark.parametrize(("body", "field"), [
    ({"matchers": {"category": "queries"}, "comment": "no end"}, "ends_at"),
    ({"matchers": {"category": "queries"}, "ends_at": "+1h"}, "comment"),
    ({"matchers": {"category": "queries"}, "ends_at": "+1h", "comment": "  "}, "comment"),
    ({"matchers": {"event_type": "query.nope"}, "ends_at": "+1h", "comment": "x"}, "matchers"),
    ({"matchers": {}, "ends_at": "+1h", "comment": "x"}, "matchers"),
    ({"matchers": {"colour": "red"}, "ends_at": "+1h", "comment": "x"}, "matchers"),
    ({"matchers": {"workspace_id": "ws_nope"}, "ends_at": "+1h", "comment": "x"}, "matchers"),
    ({"matchers": {"category": "queries"}, "ends_at": "-1h", "comment": "x"}, "ends_at"),
    ({"matchers": {"category": "queries"}, "ends_at": "+400d", "comment": "x"}, "ends_at"),
], ids=["no-end", "no-comment", "blank-comment", "unknown-type", "no-matcher",
        "unknown-matcher", "unknown-workspace", "ends-before-it-starts", "over-a-year"])
def test_a_bad_silence_is_a_400_naming_the_field(staff_api, body, field):
    if isinstance(body.get("ends_at"), str) and body["ends_at"][0] in "+-":
        sign, amount, unit = body["ends_at"][0], int(body["ends_at"][1:-1]), body["ends_at"][-1]
        delta = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
        body = {**body, "ends_at": (timezone.now() + (delta if sign == "+" else -delta))
                .isoformat()}

    answer = staff_api.post(URL, body, format="json")

    assert answer.status_code == 400 and field in answer.json(), answer.json()
    assert not Silence.objects.exists()


def test_silences_need_their_permissions(make_user, team):
    helper = make_user("helper", staff=True)
    api = api_client_for(helper)
    assert api.get(URL).status_code == 403
    helper.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_silence", "add_silence"]))
    helper = type(helper).objects.get(pk=helper.pk)  # its permissions afresh
    api = api_client_for(helper)
    assert api.get(URL).status_code == 200
    created = api.post(URL, {"matchers": {"category": "queries"}, "ends_at": later(hours=1),
                             "comment": "x"}, format="json")
    assert created.status_code == 201
    assert api.post(f"{URL}{created.json()['id']}/expire/").status_code == 403
    assert api_client_for(make_user("member")).get(URL).status_code == 403


def test_the_admin_lists_silences_by_state_and_expires_one(admin_client, admin_user):
    now = timezone.now()
    active = Silence.objects.create(matchers={"category": "queries"}, starts_at=now,
                                    ends_at=now + timedelta(hours=1), comment="active one")
    Silence.objects.create(matchers={"category": "users"},
                                      starts_at=now + timedelta(hours=1),
                                      ends_at=now + timedelta(hours=2), comment="upcoming one")
    Silence.objects.create(matchers={"category": "system"}, starts_at=now - timedelta(hours=2),
                           ends_at=now - timedelta(hours=1), comment="expired one")
    changelist = reverse("admin:notifications_silence_changelist")

    for state, expected in (("active", "active one"), ("upcoming", "upcoming one"),
                            ("expired", "expired one")):
        html = admin_client.get(changelist, {"state": state}).content.decode()
        shown = {c for c in ("active one", "upcoming one", "expired one") if c in html}
        assert shown == {expected}, state

    admin_client.post(changelist, {"action": "expire_now", "_selected_action": [active.pk]})
    active.refresh_from_db()
    assert active.ends_at <= timezone.now()
    created = admin_client.post(reverse("admin:notifications_silence_add"), {
        "matchers": '{"event_type": "query.query_failed"}', "starts_at": "",
        "ends_at_0": (now + timedelta(hours=3)).strftime("%Y-%m-%d"),
        "ends_at_1": (now + timedelta(hours=3)).strftime("%H:%M:%S"),
        "comment": "from the admin"})
    assert created.status_code == 302, created.content.decode()[:2000]
    assert Silence.objects.get(comment="from the admin").created_by == admin_user
