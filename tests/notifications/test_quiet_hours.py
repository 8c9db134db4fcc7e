"""Quiet hours: a user's emails wait until their quiet hours end (in their own time zone), then
go out together as one digest email; the bell is written as usual; critical never waits."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from events.models import Category
from notifications.deliveries.send import Outcome, delivery_send
from notifications.models import Delivery, Notification, RoutingRule, UserNotificationSettings
from notifications.policies.quiet_hours import quiet_until
from notifications.services.held import held_release
from tests.support import api_client_for, emit_and_route

PARIS, NEW_YORK = "Europe/Paris", "America/New_York"


def at(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


# --- the clock ------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "now", "start", "end", "until"), [
    # A night crossing midnight, from either side of it.
    (PARIS, at(PARIS, 2026, 12, 4, 23, 30), time(22), time(7), at(PARIS, 2026, 12, 5, 7)),
    (PARIS, at(PARIS, 2026, 12, 5, 6, 59), time(22), time(7), at(PARIS, 2026, 12, 5, 7)),
    (PARIS, at(PARIS, 2026, 12, 5, 7, 0), time(22), time(7), None),
    (PARIS, at(PARIS, 2026, 12, 4, 21, 59), time(22), time(7), None),
    # Within a day.
    (PARIS, at(PARIS, 2026, 12, 4, 13), time(12), time(14), at(PARIS, 2026, 12, 4, 14)),
    (PARIS, at(PARIS, 2026, 12, 4, 14), time(12), time(14), None),
    # The clocks go forward past the end (02:30 does not exist that night): the change.
    (PARIS, at(PARIS, 2026, 3, 29, 1, 30), time(1), time(2, 30),
     datetime(2026, 3, 29, 1, tzinfo=UTC)),
    # The clocks go back over the end (02:30 happens twice): its first occurrence.
    (PARIS, datetime(2026, 10, 24, 23, 0, tzinfo=UTC), time(0), time(2, 30),
     datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    # A night across midnight that is an hour longer (New York goes back at 02:00).
    (NEW_YORK, at(NEW_YORK, 2026, 10, 31, 23, 30), time(23), time(6),
     datetime(2026, 11, 1, 11, 0, tzinfo=UTC)),
], ids=["before-midnight", "just-before-end", "at-end", "just-before-start", "within-a-day",
        "end-of-day", "spring-forward", "fall-back", "long-night"])
def test_quiet_hours_end_at_the_first_moment_the_local_clock_shows_the_end(zone, now, start,
                                                                          end, until):
    found = quiet_until(now.astimezone(UTC), zone=zone, start=start, end=end)

    assert found == (until.astimezone(UTC) if until else None)


# --- the API --------------------------------------------------------------------------------

def test_time_zone_and_quiet_hours_are_part_of_the_preferences(api, user):
    answer = api.put("/api/preferences/", {"timezone": PARIS,
                                            "quiet_hours": {"start": "22:00", "end": "07:00"}},
                     format="json")

    assert answer.status_code == 200
    assert (answer.json()["timezone"], answer.json()["quiet_hours"]) == (
        PARIS, {"start": "22:00", "end": "07:00"})
    assert api.get("/api/preferences/").json()["quiet_hours"] == {"start": "22:00",
                                                                   "end": "07:00"}
    switched_off = api.put("/api/preferences/", {"quiet_hours": None}, format="json").json()
    assert (switched_off["timezone"], switched_off["quiet_hours"]) == (PARIS, None)


@pytest.mark.parametrize(("body", "field"), [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": "22-07"}, "quiet_hours"),
    ({"timezone": PARIS, "categories": {"nowhere": {"email": False}}}, "categories"),
], ids=["unknown-zone", "empty-zone", "25:00", "no-end", "same-start-and-end", "not-an-object",
        "all-or-nothing"])
def test_a_bad_zone_or_quiet_hours_is_a_400_naming_it_and_nothing_is_written(api, user, body,
                                                                            field):
    answer = api.put("/api/preferences/", body, format="json")

    assert answer.status_code == 400
    assert field in str(answer.json())
    assert not UserNotificationSettings.objects.exists()


# --- routing and release --------------------------------------------------------------------

@pytest.fixture
def quiet_now(make_workspace, make_user):
    """A workspace of two: ``night`` in quiet hours right now (in Tokyo), ``day`` not."""
    night, day = make_user("night"), make_user("day")
    workspace = make_workspace("Ops", users=[night, day])
    local = timezone.now().astimezone(ZoneInfo("Asia/Tokyo"))
    start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    api_client_for(night).put("/api/preferences/", {
        "timezone": "Asia/Tokyo", "quiet_hours": {"start": f"{start:%H:%M}",
                                                  "end": f"{end:%H:%M}"}}, format="json")
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"),
                               channels=["in_app", "email"])
    return workspace, night, day


def test_emails_in_quiet_hours_are_held_and_the_bell_is_written(quiet_now, staff_api):
    workspace, night, day = quiet_now

    event = emit_and_route("query.query_failed", workspace, query_name="nightly")  # high

    held = Delivery.objects.get(event=event, channel="email", user=night)
    assert held.status == "held" and held.decision == "held"
    assert "Quiet hours" in held.reason and "Asia/Tokyo" in held.reason
    assert timezone.now() + timedelta(hours=1) < held.release_at < timezone.now() + timedelta(
        hours=2, minutes=1)
    assert Delivery.objects.get(event=event, channel="email", user=day).status == "pending"
    assert Notification.objects.filter(event=event).count() == 2  # the bell, as usual
    listed = staff_api.get("/api/deliveries/", {"status": "held"}).json()["results"]
    assert [(d["id"], d["release_at"] is not None) for d in listed] == [(str(held.pk), True)]


def test_a_critical_email_is_never_held(quiet_now):
    workspace, night, _ = quiet_now

    event = emit_and_route("data_source.connection_lost", workspace, datasource_name="X")

    assert Delivery.objects.get(event=event, channel="email", user=night).status == "pending"


def test_the_held_emails_go_out_as_one_digest_when_quiet_hours_end(
        quiet_now, smtp_server, email_on):
    workspace, night, _ = quiet_now
    server = smtp_server()
    email_on(server)
    titles = []
    for name in ("a", "b", "c"):
        emit_and_route("query.query_failed", workspace, query_name=name)
        titles.append(f"Query failed: {name}")
    release_at = Delivery.objects.filter(user=night, status="held").first().release_at

    assert held_release(now=release_at - timedelta(seconds=1)) == 0  # not yet
    assert held_release(now=release_at) == 1

    digest = Delivery.objects.get(kind="digest", user=night)
    assert (digest.channel, digest.target, digest.priority) == ("email", night.email, "high")
    assert not Delivery.objects.filter(status="held").exists()
    assert delivery_send(delivery_id=digest.pk) == Outcome.DELIVERED
    [message] = [r for r in server.received if r.rcpt_tos == [night.email]]
    assert all(title in message.text() for title in titles)
    assert set(Delivery.objects.filter(user=night, kind="event", channel="email")
               .values_list("status", flat=True)) == {"delivered"}
    assert held_release(now=release_at + timedelta(minutes=5)) == 0  # exactly once


def test_switching_quiet_hours_off_releases_what_they_held_now(quiet_now):
    workspace, night, _ = quiet_now
    emit_and_route("query.query_failed", workspace, query_name="q")

    api_client_for(night).put("/api/preferences/", {"quiet_hours": None}, format="json")

    assert Delivery.objects.get(user=night, status="held").release_at <= timezone.now()
    assert held_release() == 1
