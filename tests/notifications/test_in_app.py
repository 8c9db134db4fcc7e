"""The in-app channel's immediate rows: what the bell shows after routing, once per (user,
event) however often routing runs, only for the members policies leave, and in a number of
queries that does not grow with the audience (PostgreSQL writes them in one statement;
elsewhere the ORM's bulk insert)."""

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import emit
from events.models import Category, Event, EventType, Membership, Workspace
from notifications.models import Delivery, Mute, Notification, NotificationPreference
from notifications.routing.route import event_route, events_lock, events_route
from notifications.services.rules import routing_rule_set
from tests.operations.test_probes import samples, scrape
from tests.support import api_client_for

CRITICAL = "data_source.connection_lost"  # "Connection lost: {{ datasource_name }}"
VIOLATION = "policy.violation_detected"  # critical, not grouped: each event routes alone
HIGH = "query.query_failed"  # "Query failed: {{ query_name }}"


def in_app_only(key: str) -> None:
    routing_rule_set(event_type=EventType.objects.get(key=key), channels=["in_app"])


def bell(user) -> tuple[list, dict]:
    """What ``user``'s bell shows: the list and the unread count, through the API."""
    client = api_client_for(user)
    listed = client.get("/api/notifications/")
    count = client.get("/api/notifications/unread-count/")
    assert listed.status_code == count.status_code == 200
    return listed.json()["results"], count.json()


def route_again(event: Event) -> None:
    """Route ``event`` once more, as if it were still pending (a retried batch)."""
    Event.objects.filter(pk=event.pk).update(status=Event.Status.PENDING)
    event_route(event_id=event.pk)


def test_every_member_sees_the_event_in_the_bell(db, make_workspace, make_user):
    in_app_only(CRITICAL)
    outsider, gone = make_user("outsider"), make_user("gone")
    workspace = make_workspace("Warehouse", members=3, users=[gone])
    make_workspace("Elsewhere", users=[outsider])
    gone.is_active = False
    gone.save()
    before = timezone.now()

    name = "O'Brien's {orders} \"db\" 100% ünï 🚨"  # quotes, braces, percent, unicode
    event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": name})
    result = event_route(event_id=event.pk)

    members = workspace.people[1:]
    assert result.channels == {"in_app": 3}
    assert set(Notification.objects.values_list("user_id", flat=True)) == {
        m.pk for m in members}
    for member in members:
        (shown,), unread = bell(member)
        assert {key: shown[key] for key in (
            "kind", "title", "priority", "category", "event_type", "workspace_id",
            "workspace_name", "event_id", "digest_id", "payload", "items", "item_count",
            "is_read", "read_at", "snoozed_until", "repeat_count", "last_occurred_at")} == {
            "kind": "event", "title": f"Connection lost: {name}", "priority": "critical",
            "category": "data_sources", "event_type": CRITICAL,
            "workspace_id": str(workspace.public_id), "workspace_name": "Warehouse",
            "event_id": str(event.pk), "digest_id": None,
            "payload": {"datasource_name": name}, "items": [], "item_count": 1,
            "is_read": False, "read_at": None, "snoozed_until": None, "repeat_count": 0,
            "last_occurred_at": None}
        assert (unread["count"], unread["by_priority"]["critical"]) == (1, 1)
        row = Notification.objects.get(user=member)
        assert before <= row.created_at <= timezone.now()
        assert before <= row.updated_at <= timezone.now()
    assert bell(outsider)[1]["count"] == bell(gone)[1]["count"] == 0
    assert not Delivery.objects.exists()  # the bell's rows are its own: no delivery


def test_an_event_without_a_workspace_reaches_staff_with_no_workspace(db, make_user):
    in_app_only(VIOLATION)
    boss, _ = make_user("boss", staff=True), make_user("nobody")

    event_route(event_id=emit(VIOLATION, payload={"policy_name": "PII"}).pk)

    ((shown,), unread) = bell(boss)
    assert (shown["title"], shown["workspace_id"], shown["workspace_name"]) == (
        "Policy violation: PII", None, None)
    assert unread["count"] == 1
    assert list(Notification.objects.values_list("user_id", flat=True)) == [boss.pk]


def test_routing_twice_notifies_nobody_twice(db, make_workspace):
    in_app_only(VIOLATION)
    workspace = make_workspace(members=3)
    event = emit(VIOLATION, workspace=workspace, payload={"policy_name": "PII"})
    event_route(event_id=event.pk)
    first = dict(Notification.objects.values_list("user_id", "pk"))
    Notification.objects.filter(user=workspace.people[0]).delete()

    route_again(event)
    route_again(event)

    again = dict(Notification.objects.values_list("user_id", "pk"))
    assert again.keys() == {m.pk for m in workspace.people}
    assert Notification.objects.count() == 3
    assert {u: again[u] for u in first if u != workspace.people[0].pk} == {
        u: pk for u, pk in first.items() if u != workspace.people[0].pk}
    assert bell(workspace.people[1])[1]["count"] == 1


def test_members_a_policy_drops_get_no_notification(db, make_workspace):
    in_app_only(HIGH)
    workspace = make_workspace(members=4)
    opted_out, muted, *notified = workspace.people
    NotificationPreference.objects.create(user=opted_out, channel="in_app", enabled=False,
                                          category=Category.objects.get(slug="queries"))
    Mute.objects.create(user=muted, event_type=EventType.objects.get(key=HIGH))

    event = emit(HIGH, workspace=workspace, payload={"query_name": "Daily KPIs"})
    event_route(event_id=event.pk)

    assert set(Notification.objects.values_list("user_id", flat=True)) == {
        m.pk for m in notified}
    assert dict(Delivery.objects.filter(event=event).values_list("user_id", "decision")) == {
        opted_out.pk: "preference_off", muted.pk: "muted"}
    assert bell(notified[0])[0][0]["title"] == "Query failed: Daily KPIs"
    assert bell(opted_out)[1]["count"] == bell(muted)[1]["count"] == 0


def test_a_batch_of_events_gives_each_member_the_events_of_their_workspaces(
        db, make_workspace, make_user):
    in_app_only(CRITICAL)
    both = make_user("both")
    one = make_workspace("One", members=2, users=[both])
    two = make_workspace("Two", members=1, users=[both])
    events = [emit(CRITICAL, workspace=workspace, payload={"datasource_name": name})
              for workspace, name in ((two, "b"), (one, "a"), (two, "c"))]

    with transaction.atomic():
        locked = events_lock(where=f"e.id IN ({', '.join(['%s'] * len(events))})",
                             params=[Event._meta.pk.get_db_prep_value(e.pk, connection)
                                     for e in events])
        events_route(locked, token=locked[0].routing_token)

    rows = Notification.objects.order_by("pk").values_list("user_id", "event_id", "title",
                                                           "workspace_id")
    expected = {(m.pk, e.pk, f"Connection lost: {e.payload['datasource_name']}",
                 e.workspace_id) for e in events for m in e.workspace.people}
    assert set(rows) == expected and len(rows) == len(expected) == 7
    shown = [item["title"] for item in bell(both)[0]]
    assert sorted(shown) == ["Connection lost: a", "Connection lost: b", "Connection lost: c"]
    assert bell(both)[1]["count"] == 3


def make_members(workspace: Workspace, count: int) -> None:
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"{workspace.name}-{n}") for n in range(count))
    Membership.objects.bulk_create(Membership(workspace=workspace, user=u) for u in users)


def test_a_fan_out_costs_the_same_queries_whatever_the_audience(postgres, db):
    """On PostgreSQL (SQLite's limit of bound variables splits a large insert)."""
    in_app_only(CRITICAL)

    def queries_to_route(members: int) -> list[str]:
        workspace = Workspace.objects.create(name=f"w{members}")
        make_members(workspace, members)
        event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "x"})
        with CaptureQueriesContext(connection) as queries:
            assert event_route(event_id=event.pk).channels == {"in_app": members}
        assert Notification.objects.filter(event=event).count() == members
        return [q["sql"] for q in queries]

    queries_to_route(1)  # the first route of a process reads the routing configuration
    small, large = queries_to_route(2), queries_to_route(2000)

    assert len(small) == len(large), "\n".join(sql[:200] for sql in large)
    inserts = [sql for sql in large if sql.startswith('INSERT INTO "notifications_notification" ')]
    assert len(inserts) == 1


def test_each_notification_counts_once_in_the_delivery_latency(
        client, db, make_workspace, django_capture_on_commit_callbacks):
    in_app_only(VIOLATION)
    workspace = make_workspace(members=5)
    before = samples(scrape(client))

    with django_capture_on_commit_callbacks(execute=True):
        event_route(event_id=emit(VIOLATION, workspace=workspace).pk)

    after = samples(scrape(client))
    grew = {key: after[key] - before.get(key, 0) for key in after
            if key[0].startswith("datafi_delivery_latency_seconds")
            and ("channel", "in_app") in key[1]}
    buckets = {key[1]: value for key, value in grew.items()
               if key[0] == "datafi_delivery_latency_seconds_bucket"}
    assert grew[("datafi_delivery_latency_seconds_count", (("channel", "in_app"),))] == 5
    assert grew[("datafi_delivery_latency_seconds_sum", (("channel", "in_app"),))] > 0
    # The five share their event's latency: one bucket and every wider one count all five.
    assert set(buckets.values()) <= {0, 5} and buckets[
        (("channel", "in_app"), ("le", "+Inf"))] == 5
    assert after[("datafi_deliveries_total", (("channel", "in_app"), ("outcome", "delivered")))
                 ] - before.get(("datafi_deliveries_total", (("channel", "in_app"),
                                                              ("outcome", "delivered"))), 0) == 5
