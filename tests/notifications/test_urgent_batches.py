"""The priority lane routes a burst in batches: a critical or high event's task routes its own
event at once and, in the same transaction, the oldest other critical and high events that
wait and that no worker holds; their own tasks then find them routed."""

import re
import threading
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from events import dispatch, emit
from events.models import Event
from notifications import tasks as notification_tasks
from notifications.models import Delivery, Notification
from notifications.routing import plan
from notifications.routing.route import event_route_urgent
from tests.support import wait_until

CRITICAL = "data_source.connection_lost"
HIGH = "query.query_failed"
MEDIUM = "query.long_running_query"


@pytest.fixture
def published(monkeypatch):
    """The routing jobs published through the broker (job, event id), instead of publishing."""
    jobs = []
    monkeypatch.setattr("events.dispatch.publish",
                        lambda job, **kwargs: jobs.append((job, kwargs.get("event_id"))))
    return jobs


def statuses(events) -> list[str]:
    found = dict(Event.objects.values_list("pk", "status"))
    return [found[event.pk] for event in events]


def test_an_urgent_route_takes_the_other_waiting_urgent_events_along(
        db, make_workspace, published):
    workspace = make_workspace(members=2)
    urgent = [emit(CRITICAL, workspace=workspace, payload={"datasource_name": f"db{n}"})
              for n in range(3)]
    urgent.append(emit(HIGH, workspace=workspace))
    batched = emit(MEDIUM, workspace=workspace)

    result = event_route_urgent(event_id=urgent[1].pk)

    assert result.event_id == str(urgent[1].pk) and not result.skipped
    assert result.channels["in_app"] == 2
    assert statuses(urgent) == ["routed"] * 4
    assert statuses([batched]) == ["pending"]  # the batched lane's, not the priority lane's
    for event in urgent:  # each once, as alone
        assert Notification.objects.filter(event=event).count() == 2
        assert Delivery.objects.filter(event=event, channel="email").count() == 2

    # The others' own tasks find their events routed, and write nothing.
    with CaptureQueriesContext(connection) as queries:
        assert event_route_urgent(event_id=urgent[0].pk).skipped
    assert not any(q["sql"].startswith(("INSERT", "UPDATE")) for q in queries)
    assert Notification.objects.count() == 8


def test_a_batch_is_the_task_s_own_event_and_the_oldest_others_up_to_the_size(
        db, make_workspace, published, settings):
    settings.DATAFI_URGENT_ROUTING_BATCH_SIZE = 3
    workspace = make_workspace(members=1)
    urgent = [emit(CRITICAL, workspace=workspace, payload={"datasource_name": f"db{n}"})
              for n in range(5)]

    event_route_urgent(event_id=urgent[4].pk)  # the newest: first, with the two oldest

    assert statuses(urgent) == ["routed", "routed", "pending", "pending", "routed"]


def test_the_task_s_own_event_is_committed_before_the_others_are_routed(
        db, make_workspace, monkeypatch, published):
    workspace = make_workspace(members=1)
    older = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "older"})
    own = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "own"})
    seen = []
    real = plan.audiences_get

    def audiences(batch):
        seen.append(([e.pk for e in batch], Event.objects.get(pk=own.pk).status))
        return real(batch)

    monkeypatch.setattr(plan, "audiences_get", audiences)

    event_route_urgent(event_id=own.pk)

    assert seen == [([own.pk], "pending"), ([older.pk], "routed")]


def test_alone_it_costs_one_event_s_route_and_one_look_for_others(
        db, make_workspace, published):
    workspace = make_workspace(members=2)
    warm = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "warm"})
    event_route_urgent(event_id=warm.pk)  # the process's first route reads the configuration
    one, two = (emit(CRITICAL, workspace=workspace, payload={"datasource_name": name})
                for name in ("a", "b"))
    event_route_urgent(event_id=one.pk, batch_size=1)
    with CaptureQueriesContext(connection) as alone:
        event_route_urgent(event_id=two.pk, batch_size=1)
    three = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "c"})

    with CaptureQueriesContext(connection) as looked:
        event_route_urgent(event_id=three.pk)

    assert len(looked) == len(alone) + 3  # the look, in a transaction (a savepoint here)


def test_a_burst_s_batch_costs_the_queries_of_a_small_one(
        postgres, db, make_workspace, published):
    """On PostgreSQL (SQLite's limit of bound variables splits large inserts)."""
    workspace = make_workspace(members=3)
    warm = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "warm"})
    event_route_urgent(event_id=warm.pk)

    def queries_to_route(count):
        burst = [emit(CRITICAL, workspace=workspace,
                      payload={"datasource_name": f"db{count}-{n}"}) for n in range(count)]
        with CaptureQueriesContext(connection) as queries:
            event_route_urgent(event_id=burst[0].pk)
        assert statuses(burst) == ["routed"] * count
        return queries

    few, many = queries_to_route(3), queries_to_route(30)

    assert len(few) == len(many), "\n".join(q["sql"][:120] for q in many)


def test_a_failed_batch_is_routed_one_by_one_and_the_bad_event_gets_its_own_job(
        db, make_workspace, audience_breaks_for, published):
    workspace = make_workspace(members=2)
    urgent = [emit(CRITICAL, workspace=workspace, payload={"datasource_name": f"db{n}"})
              for n in range(4)]
    published.clear()
    bad = urgent[2].pk
    audience_breaks_for(bad)

    result = event_route_urgent(event_id=urgent[0].pk)

    assert not result.skipped
    assert statuses(urgent) == ["routed", "routed", "pending", "routed"]
    assert Event.objects.get(pk=bad).last_error.endswith("audience lookup exploded")
    assert published == [(dispatch.ROUTE_URGENT, str(bad))]  # the priority lane again
    assert event_route_urgent(event_id=urgent[1].pk).skipped  # no batch claims it again

    notification_tasks.event_route_urgent.apply(kwargs={"event_id": str(bad)})  # its task
    failed = Event.objects.get(pk=bad)
    assert (failed.status, failed.last_error) == ("failed",
                                                 "RuntimeError: audience lookup exploded")


def test_a_failed_route_of_the_task_s_own_event_is_the_task_s_failure(
        db, make_workspace, monkeypatch, published):
    workspace = make_workspace(members=1)
    event = emit(CRITICAL, workspace=workspace)
    monkeypatch.setattr(plan, "audiences_get", lambda batch: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        event_route_urgent(event_id=event.pk)

    assert statuses([event]) == ["pending"]


# --- with other workers holding events ------------------------------------------------------

class Holder(threading.Thread):
    """Holds the row locks of ``events`` in a transaction of its own connection until
    ``release()``; ``route`` routes them before committing, as another worker's batch does."""

    def __init__(self, events, *, route=False):
        super().__init__(daemon=True)
        self.events, self.route = events, route
        self.holding, self.released, self.errors = (threading.Event(), threading.Event(), [])

    def run(self):
        try:
            with transaction.atomic():
                list(Event.objects.select_for_update().filter(pk__in=[e.pk for e in self.events]))
                self.holding.set()
                self.released.wait(timeout=60)
                if self.route:
                    from notifications.routing.route import event_route
                    for event in self.events:
                        event_route(event_id=event.pk)
        except Exception as exc:  # reported by release()
            self.errors.append(exc)
        finally:
            self.holding.set()
            connection.close()

    def release(self):
        self.released.set()
        self.join(timeout=60)
        assert not self.errors, self.errors


def route_in_a_thread(event):
    results, errors = [], []

    def run():
        try:
            results.append(event_route_urgent(event_id=event.pk))
        except Exception as exc:  # reported by the caller
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results, errors


def lock_waiters() -> int:
    """Sessions of this database waiting for a row lock now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("holder_routes", [True, False], ids=["holder-routes", "holder-does-not"])
def test_an_event_another_worker_holds_is_left_to_it_then_made_sure_of(
        postgres, live_db, make_workspace, published, holder_routes):
    workspace = make_workspace(members=1)
    own, other = (emit(CRITICAL, workspace=workspace, payload={"datasource_name": name})
                  for name in ("own", "other"))
    held = Holder([own], route=holder_routes)
    held.start()
    assert held.holding.wait(timeout=30)
    try:
        thread, results, errors = route_in_a_thread(own)
        wait_until(lambda: lock_waiters() == 1, timeout=30, message="the task waiting for it")
        assert statuses([own, other]) == ["pending", "pending"] and thread.is_alive()
    finally:
        held.release()
    thread.join(timeout=60)
    assert not errors, errors

    assert statuses([own]) == ["routed"]
    assert results[0].skipped is holder_routes  # routed once, by whichever did
    assert Notification.objects.filter(event=own).count() == 1
    # Only a task that routed its own event looks for others.
    assert statuses([other]) == ["pending" if holder_routes else "routed"]


def test_a_task_whose_event_is_routed_or_gone_leaves_the_others_alone(
        db, make_workspace, published):
    workspace = make_workspace(members=1)
    done, waiting = (emit(CRITICAL, workspace=workspace, payload={"datasource_name": name})
                     for name in ("done", "waiting"))
    event_route_urgent(event_id=done.pk, batch_size=1)

    assert event_route_urgent(event_id=done.pk).skipped  # its task, once more
    assert event_route_urgent(event_id=uuid.uuid4()).skipped  # an event deleted since

    assert statuses([waiting]) == ["pending"]


def test_events_another_worker_holds_are_skipped_by_the_batch(
        postgres, live_db, make_workspace, published):
    workspace = make_workspace(members=1)
    first, held_one, own = (emit(CRITICAL, workspace=workspace, payload={"datasource_name": n})
                            for n in ("first", "held", "own"))
    held = Holder([held_one])
    held.start()
    assert held.holding.wait(timeout=30)
    try:
        result = event_route_urgent(event_id=own.pk)  # returns without waiting for it
    finally:
        held.release()

    assert not result.skipped
    assert statuses([first, held_one, own]) == ["routed", "pending", "routed"]


# --- with a real worker ---------------------------------------------------------------------

@pytest.mark.worker
def test_a_burst_of_critical_events_is_routed_each_once(live_db, celery_worker, make_workspace):
    def urgent_tasks_done() -> int:
        return len(re.findall(r"Task notifications\.event_route_urgent\[[^]]+\] succeeded",
                              celery_worker.log_path.read_text()))

    workspace = make_workspace(members=2)
    before = urgent_tasks_done()
    events = [emit(CRITICAL, workspace=workspace.public_id,
                   payload={"datasource_name": f"db{n}"}) for n in range(200)]

    wait_until(lambda: not Event.objects.filter(status="pending").exists(), timeout=120,
               message="every event routed")
    # Each event's own task ran too (most found their event routed): none is left queued.
    wait_until(lambda: urgent_tasks_done() - before >= 200, timeout=120,
               message="the 200 tasks consumed")
    assert Event.objects.filter(pk__in=[e.pk for e in events], status="routed").count() == 200
    assert Notification.objects.count() == 400
    assert Notification.objects.values("event", "user").distinct().count() == 400
    assert Delivery.objects.filter(channel="email").values("event", "user").distinct().count() \
        == Delivery.objects.filter(channel="email").count() == 400
