"""Members' preferences in the Django admin: listed for support, changed there, and honoured by
the next route (critical events ignoring them is tested with the API, in test_preferences)."""

import html

import pytest

from events.models import Category
from notifications.models import Notification, NotificationPreference
from tests.notifications.test_preferences import URL, route
from tests.support import api_client_for

CHANGELIST = "/admin/notifications/notificationpreference/"
ADD = CHANGELIST + "add/"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def team(make_workspace, make_user):
    alice, carol = make_user("alice"), make_user("carol")
    return make_workspace(users=[alice, carol]), alice, carol


def bell(event) -> list[str]:
    return sorted(Notification.objects.filter(event=event)
                  .values_list("user__username", flat=True))


def test_the_list_shows_what_members_chose_and_filters_by_channel(admin_client, team):
    _, alice, carol = team
    api_client_for(alice).put(URL, {"categories": {"queries": {"email": False}}}, format="json")
    api_client_for(carol).put(URL, {"categories": {"users": {"in_app": False}}}, format="json")

    page = html.unescape(admin_client.get(CHANGELIST + "?channel=email").content.decode())

    assert "alice" in page and "Queries" in page
    assert "carol" not in page  # her choice is on in-app, not email
    assert "1 notification preference" in page


def test_a_channel_switched_off_in_the_admin_applies_to_the_next_event(admin_client, team):
    workspace, alice, _ = team
    queries = Category.objects.get(slug="queries")

    response = admin_client.post(ADD, {"user": alice.pk, "category": queries.pk,
                                       "channel": "in_app", "enabled": ""})
    assert response.status_code == 302, response.content.decode()[-2000:]

    failed = route("query.query_failed", workspace, query_name="nightly", error="timeout")
    assert bell(failed) == ["carol"]

    preference = NotificationPreference.objects.get(user=alice, category=queries)
    changed = admin_client.post(f"{CHANGELIST}{preference.pk}/change/", {
        "user": alice.pk, "category": queries.pk, "channel": "in_app", "enabled": "on"})
    assert changed.status_code == 302, changed.content.decode()[-2000:]
    again = route("query.query_failed", workspace, query_name="nightly", error="timeout")
    assert bell(again) == ["alice", "carol"]


def test_the_same_choice_twice_is_refused_with_a_message(admin_client, team):
    _, alice, _ = team
    queries = Category.objects.get(slug="queries")
    NotificationPreference.objects.create(user=alice, category=queries, channel="email",
                                          enabled=False)

    response = admin_client.post(ADD, {"user": alice.pk, "category": queries.pk,
                                       "channel": "email", "enabled": "on"})

    assert response.status_code == 200
    assert "already exists" in html.unescape(response.content.decode())
    assert NotificationPreference.objects.get(user=alice, category=queries).enabled is False
