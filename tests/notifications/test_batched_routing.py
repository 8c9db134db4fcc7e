"""Routing in batches: emit requests one task for many batched events, the task claims and
routes them set-based, and the routing configuration is cached per process under a token
that any change, made anywhere, replaces."""

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import WebhookEndpoint
from channels_app.services.digests import digest_setting_set
from events import dispatch, emit
from events.models import Category, Event, EventType
from events.services.outbox import ROUTING_REQUESTED_KEY, outbox_sweep, routing_request_clear
from notifications import tasks as notification_tasks
from notifications.models import (
    Delivery,
    InhibitRule,
    Notification,
    NotificationPreference,
    Silence,
)
from notifications.routing.route import event_route, events_route_pending
from notifications.services.rules import routing_rule_set
from tests.support import wait_until

MEDIUM = "query.long_running_query"
CRITICAL = "data_source.connection_lost"


@pytest.fixture
def published(monkeypatch):
    """The routing jobs published through the broker, instead of publishing them."""
    jobs = []
    monkeypatch.setattr("events.dispatch.publish", lambda job, **kwargs: jobs.append(job))
    return jobs


def in_another_connection(change):
    """Run ``change`` in a thread of its own: its own connection, committed on return."""
    errors = []

    def run():
        try:
            change()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not errors, errors


# --- emit requests routing once per transaction ---------------------------------------

def test_a_transaction_of_batched_events_publishes_one_routing_task(
        db, make_workspace, published, django_capture_on_commit_callbacks):
    workspace = make_workspace(members=2)

    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            emit(MEDIUM, workspace=workspace, payload={"query_name": f"q{n}"})
    with django_capture_on_commit_callbacks(execute=True):  # the task has not run yet
        emit(MEDIUM, workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True):
        emit(CRITICAL, workspace=workspace)  # the priority lane: one message each

    assert published == [dispatch.ROUTE_PENDING, dispatch.ROUTE_URGENT]

    routing_request_clear()  # what the task does first
    with django_capture_on_commit_callbacks(execute=True):
        emit(MEDIUM, workspace=workspace)
    assert published[-1] == dispatch.ROUTE_PENDING


def test_a_refused_request_forgets_the_flag_and_leaves_the_events_to_the_sweep(
        db, make_workspace, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(job, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("events.dispatch.publish", broker_down)
    monkeypatch.setattr("events.services.outbox._broker_down_until", 0.0)
    workspace = make_workspace(members=1)

    with django_capture_on_commit_callbacks(execute=True):
        events = [emit(MEDIUM, workspace=workspace) for _ in range(3)]

    assert cache.get(ROUTING_REQUESTED_KEY) is None
    due = Event.objects.filter(pk__in=[e.pk for e in events],
                               next_sweep_at__lte=timezone.now(), status="pending")
    assert due.count() == 3


# --- the drain, in process ------------------------------------------------------------

def test_the_drain_routes_every_pending_batched_event_and_leaves_the_urgent_ones(
        db, make_workspace, make_user):
    make_user("boss", staff=True)
    one, two = make_workspace("One", members=2), make_workspace("Two", members=3)
    events = [emit(MEDIUM, workspace=ws, payload={"query_name": str(n)})
              for n, ws in enumerate([one, two] * 6)]
    events.append(emit("policy.policy_created"))  # low, no workspace: staff
    urgent = emit(CRITICAL, workspace=one)

    result = events_route_pending(batch_size=5)

    assert (result.routed, result.batches) == (13, 3)
    assert not Event.objects.filter(pk__in=[e.pk for e in events], status="pending").exists()
    assert Event.objects.get(pk=urgent.pk).status == "pending"
    for event in events:
        members = (event.workspace.people if event.workspace else ["boss"])
        assert Delivery.objects.filter(event=event, channel="in_app", bucket__in=["5m", "15m"],
                                       status="pending").count() == len(members)


def test_routing_a_batch_costs_the_same_queries_whatever_its_size_and_audience(
        postgres, db, make_workspace, make_user):
    """On PostgreSQL (SQLite's limit of bound variables splits a large insert)."""
    def queries_to_drain(events, members):
        workspaces = [make_workspace(members=members) for _ in range(3)]
        for n in range(events):
            workspace = workspaces[n % 3]
            NotificationPreference.objects.get_or_create(
                user=workspace.people[0], category=Category.objects.get(slug="queries"),
                channel="in_app", enabled=False)
            emit(MEDIUM, workspace=workspace, payload={"query_name": str(n)})
        emit("policy.policy_created")  # and one for staff
        with CaptureQueriesContext(connection) as queries:
            assert events_route_pending(batch_size=1000).routed == events + 1
        assert Delivery.objects.filter(status="pending").count() == (
            events * (members - 1) + 1)
        Delivery.objects.all().delete()
        return [q["sql"] for q in queries]

    make_user("boss", staff=True)
    queries_to_drain(2, 2)  # the first route of a process reads the routing configuration
    small, large = queries_to_drain(3, 2), queries_to_drain(60, 12)

    assert len(small) == len(large), "\n".join(large)
    assert not any("routingrule" in sql or "digestsetting" in sql or "webhookendpoint" in sql
                   for sql in large)


def test_one_bad_event_fails_alone_and_gets_a_task_of_its_own(
        db, make_workspace, audience_breaks_for, published):
    workspace = make_workspace(members=2)
    events = [emit(MEDIUM, workspace=workspace, payload={"query_name": str(n)})
              for n in range(4)]
    bad = events[2].pk
    audience_breaks_for(bad)

    result = events_route_pending()

    assert (result.routed, result.handed_over) == (3, 1)
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert [statuses[e.pk] for e in events] == ["routed", "routed", "pending", "routed"]
    assert Event.objects.get(pk=bad).last_error.endswith("audience lookup exploded")
    assert published == [dispatch.ROUTE]
    assert events_route_pending().routed == 0  # not claimed again by a batch

    notification_tasks.event_route.apply(kwargs={"event_id": str(bad)})  # its own task
    failed = Event.objects.get(pk=bad)
    assert (failed.status, failed.last_error) == ("failed",
                                                 "RuntimeError: audience lookup exploded")


# --- the cached configuration: a change anywhere is seen by the next route ---------------

def route(key, workspace, **payload) -> Event:
    event = emit(key, workspace=workspace, payload=payload)
    event_route(event_id=event.pk)
    return event


def test_a_warm_route_reads_no_configuration(db, make_workspace):
    workspace = make_workspace(members=2)
    route(CRITICAL, workspace)

    with CaptureQueriesContext(connection) as queries:
        route(CRITICAL, workspace)

    tables = " ".join(q["sql"] for q in queries)
    assert "routingrule" not in tables and "digestsetting" not in tables
    assert "webhookendpoint" not in tables
    assert "notifications_silence" not in tables and "notifications_inhibitrule" not in tables


def test_a_rule_changed_in_another_connection_applies_to_the_next_route(
        live_db, make_workspace):
    workspace = make_workspace(members=2)
    assert not Delivery.objects.filter(event=route(MEDIUM, workspace), channel="email")

    in_another_connection(lambda: routing_rule_set(
        event_type=EventType.objects.get(key=MEDIUM), channels=["in_app", "email"]))

    assert Delivery.objects.filter(event=route(MEDIUM, workspace), channel="email").count() == 2


def test_a_digest_switch_changed_in_another_connection_applies_to_the_next_route(
        live_db, make_workspace):
    workspace = make_workspace(members=2)
    assert not Notification.objects.filter(event=route(MEDIUM, workspace)).exists()

    in_another_connection(lambda: digest_setting_set(channel="in_app", digest_enabled=False))

    assert Notification.objects.filter(event=route(MEDIUM, workspace)).count() == 2


def test_an_endpoint_changed_in_another_connection_applies_to_the_next_route(
        live_db, make_workspace):
    workspace = make_workspace(members=1)
    assert not Delivery.objects.filter(event=route(CRITICAL, workspace), channel="webhook")

    in_another_connection(lambda: WebhookEndpoint.objects.create(
        name="ops", url="https://hooks.example.com/datafi"))
    assert Delivery.objects.filter(event=route(CRITICAL, workspace), channel="webhook").count() == 1

    in_another_connection(lambda: WebhookEndpoint.objects.update(is_active=False))
    assert not Delivery.objects.filter(event=route(CRITICAL, workspace), channel="webhook")


def test_silences_and_inhibit_rules_changed_in_another_connection_apply_to_the_next_route(
        live_db, make_workspace):
    """The policies read them once per routing version: a write anywhere is seen at once."""
    workspace = make_workspace(members=1)

    def status(event):
        return Event.objects.get(pk=event.pk).status

    assert status(route(MEDIUM, workspace, query_name="q1")) == "routed"
    now = timezone.now()

    in_another_connection(lambda: Silence.objects.create(
        matchers={"category": "queries"}, starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1), comment="maintenance"))
    assert status(route(MEDIUM, workspace, query_name="q2")) == "silenced"

    in_another_connection(lambda: Silence.objects.update(ends_at=timezone.now()))
    assert status(route(MEDIUM, workspace, query_name="q3")) == "routed"

    in_another_connection(lambda: InhibitRule.objects.create(
        source_event_type=EventType.objects.get(key=CRITICAL), target_categories=["queries"],
        equal=["datasource_name"]))
    route(CRITICAL, workspace, datasource_name="warehouse")
    assert status(route(MEDIUM, workspace, query_name="q4", datasource_name="warehouse")
                  ) == "inhibited"


def test_a_send_outcome_on_an_endpoint_keeps_the_cache(db):
    endpoint = WebhookEndpoint.objects.create(name="ops", url="https://hooks.example.com/x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM notifications_routingversion")
        before = cursor.fetchone()
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=3)
        cursor.execute("SELECT token FROM notifications_routingversion")
        assert cursor.fetchone() == before


# --- with a real worker ---------------------------------------------------------------

def pending_events():
    return Event.objects.filter(status="pending").count()


@pytest.mark.worker
def test_the_worker_drains_while_emits_keep_coming(live_db, celery_worker, make_workspace):
    workspace = make_workspace(members=2)
    with transaction.atomic():  # a backlog larger than a batch, one request
        for n in range(1200):
            emit(MEDIUM, workspace=workspace.public_id, payload={"query_name": f"q{n}"})

    def keep_emitting():  # one event per transaction while the worker drains
        try:
            for n in range(150):
                emit(MEDIUM, workspace=workspace.public_id, payload={"query_name": f"late{n}"})
        finally:
            connection.close()

    emitters = [threading.Thread(target=keep_emitting) for _ in range(2)]
    for thread in emitters:
        thread.start()
    for thread in emitters:
        thread.join(timeout=120)

    # No sweep runs here (no beat): an event left behind would stay pending.
    wait_until(lambda: pending_events() == 0, timeout=120, message="every event routed")
    assert Event.objects.count() == 1500
    assert Delivery.objects.count() == 1500 * 2
    assert Delivery.objects.values("event", "user").distinct().count() == 1500 * 2


@pytest.mark.worker
def test_a_lost_request_is_made_up_by_the_outbox_sweep(live_db, celery_worker, make_workspace):
    workspace = make_workspace(members=2)
    # A request whose message was lost: the flag is set, and no task will clear it.
    assert cache.add(ROUTING_REQUESTED_KEY, 1, timeout=60)
    try:
        event = emit(MEDIUM, workspace=workspace.public_id)  # committed (autocommit)
        assert Event.objects.get(pk=event.pk).status == "pending"
        Event.objects.filter(pk=event.pk).update(
            next_sweep_at=timezone.now() - timedelta(seconds=1))

        assert outbox_sweep() == 1  # the event alone, on the events queue

        wait_until(lambda: Event.objects.get(pk=event.pk).status == "routed", timeout=60,
                   message="the swept event routed")
        assert Delivery.objects.filter(event=event).count() == 2
    finally:
        routing_request_clear()
