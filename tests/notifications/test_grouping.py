"""Grouped repeats: a storm of one source's events makes one notification, one email and one
webhook, counted on the first; after the interval the next one notifies again."""

import threading
from datetime import timedelta

import pytest

from channels_app.services.webhooks import webhook_endpoint_save
from events import emit
from events.models import Event, EventType
from notifications.models import Delivery, Notification, NotificationGroup
from notifications.routing.files import routing_export, routing_import
from notifications.routing.route import event_route
from tests.support import api_client_for, emit_and_route, run_concurrently

LOST = "data_source.connection_lost"


@pytest.fixture
def grouped(db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    webhook_endpoint_save(values={"name": "Ops", "url": "http://127.0.0.1:9/hook"})
    EventType.objects.filter(key=LOST).update(group_by=["datasource_name"],
                                              repeat_interval_minutes=30)


def test_a_storm_of_one_source_notifies_once_and_counts_the_repeats(grouped, make_workspace,
                                                                    api):
    workspace = make_workspace("Ops", members=2)
    first = emit_and_route(LOST, workspace, datasource_name="Snowflake")
    repeats = [emit_and_route(LOST, workspace, datasource_name="Snowflake") for _ in range(4)]
    other_source = emit_and_route(LOST, workspace, datasource_name="Postgres")

    assert Notification.objects.filter(event=first).count() == 2
    assert Delivery.objects.filter(event=first, channel="email").count() == 2
    assert Delivery.objects.filter(event=first, channel="webhook").count() == 1
    for repeat in repeats:
        repeat.refresh_from_db()
        assert (repeat.status, repeat.grouped_into) == ("grouped", first.pk)
        assert not Delivery.objects.filter(event=repeat).exists()
    notification = Notification.objects.filter(event=first).first()
    assert notification.repeat_count == 4
    assert notification.last_occurred_at == max(r.occurred_at for r in repeats)
    assert Notification.objects.filter(event=other_source).count() == 2  # another group
    assert NotificationGroup.objects.get(first_event=first).repeats == 4


def test_after_the_interval_the_next_one_notifies(grouped, make_workspace):
    workspace = make_workspace("Ops", members=1)
    first = emit_and_route(LOST, workspace, datasource_name="Snowflake")
    Event.objects.filter(pk=first.pk).update(created_at=first.created_at - timedelta(minutes=31))
    NotificationGroup.objects.update(first_at=first.created_at - timedelta(minutes=31))

    later = emit_and_route(LOST, workspace, datasource_name="Snowflake")

    later.refresh_from_db()
    assert later.status == "routed" and Notification.objects.filter(event=later).exists()


def test_the_bell_shows_the_count_and_the_last_time(grouped, make_workspace, user):
    workspace = make_workspace("Ops", users=[user])
    emit_and_route(LOST, workspace, datasource_name="Snowflake")
    repeat = emit_and_route(LOST, workspace, datasource_name="Snowflake")

    [shown] = api_client_for(user).get("/api/notifications/").json()["results"]
    assert shown["repeat_count"] == 1
    assert shown["last_occurred_at"] == repeat.occurred_at.isoformat().replace("+00:00", "Z")


def test_grouping_is_set_over_rest_and_in_routing_files(staff_api):
    answer = staff_api.patch(f"/api/event-types/{LOST}/", {
        "group_by": ["datasource_name", "host"], "repeat_interval_minutes": 15}, format="json")
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["group_by"], answer.json()["repeat_interval_minutes"]) == (
        ["datasource_name", "host"], 15)
    for bad, field in (({"group_by": "datasource_name"}, "group_by"),
                       ({"group_by": ["a", "a"]}, "group_by"),
                       ({"repeat_interval_minutes": 0}, "repeat_interval_minutes")):
        refused = staff_api.patch(f"/api/event-types/{LOST}/", bad, format="json")
        assert refused.status_code == 400 and field in refused.json(), refused.json()

    exported = routing_export()
    assert "group_by: [datasource_name, host]" in exported
    assert "repeat_interval_minutes: 15" in exported
    EventType.objects.filter(key=LOST).update(group_by=[], repeat_interval_minutes=60)
    result = routing_import(exported)
    assert result.grouping_changed == 1
    assert routing_import(exported).grouping_changed == 0  # export then import: no change
    assert (EventType.objects.get(key=LOST).group_by,
            EventType.objects.get(key=LOST).repeat_interval_minutes) == (
        ["datasource_name", "host"], 15)


def test_repeats_routed_by_two_workers_at_once_make_exactly_one(postgres, live_db, grouped,
                                                                make_workspace):
    """Two threads (two connections, like two workers) route the same storm from opposite
    ends, so each starts with an event that would open the group."""
    workspace = make_workspace("Ops", members=2)
    events = [emit(LOST, workspace=workspace, payload={"datasource_name": "Snowflake"})
              for _ in range(6)]
    orders = iter([events, events[::-1]])
    lock = threading.Lock()

    def route_all():
        with lock:
            mine = next(orders)
        for event in mine:
            event_route(event_id=event.pk)

    run_concurrently(route_all, times=2)

    statuses = sorted(Event.objects.filter(pk__in=[e.pk for e in events])
                      .values_list("status", flat=True))
    assert statuses == ["grouped"] * 5 + ["routed"]
    [first] = Event.objects.filter(pk__in=[e.pk for e in events], status="routed")
    assert Notification.objects.filter(event__in=events).count() == 2
    assert set(Notification.objects.filter(event=first).values_list("repeat_count",
                                                                    flat=True)) == {5}
    assert NotificationGroup.objects.count() == 1
