"""Throughput figures, each against a floor measured in the same run on the same database.

    bin/bench                      # SQLite under var/bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/datafi bin/bench

Prints, per operation, the time per item and the ratio to its floor (the bare ORM write the
operation cannot avoid). A ratio that grows between commits is a regression to look at.
Creates and drops its own test database; sends nothing to a broker (routing is called
in-process, on-commit enqueueing is captured and discarded).
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from events.models import Event, EventType, Membership, Workspace  # noqa: E402
from events.services import event_emit  # noqa: E402
from notifications.models import Delivery, Notification  # noqa: E402
from notifications.services import digest_flush, event_route  # noqa: E402


def best_of(fn, repeat=3):
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings)


def report(name, items, seconds, floor_seconds):
    per_item = seconds / items * 1e6
    print(f"{name:<42} {items:>6} items  {per_item:>9.1f} us/item  "
          f"{items / seconds:>9.0f} items/s  x{seconds / floor_seconds:>5.2f} of floor")


def main():
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run():
    User = get_user_model()
    members = 200
    users = User.objects.bulk_create(User(username=f"bench{i}", email=f"b{i}@example.com")
                                     for i in range(members))
    users = list(User.objects.filter(username__startswith="bench"))
    workspace = Workspace.objects.create(name="bench")
    Membership.objects.bulk_create(Membership(workspace=workspace, user=u) for u in users)
    critical = EventType.objects.get(key="data_source.connection_lost")
    medium = EventType.objects.get(key="query.long_running_query")
    n = 300

    print(f"database: {connection.vendor}; workspace of {members} members\n")

    def floor_insert():
        with transaction.atomic():
            for _ in range(n):
                Event.objects.create(event_type=critical, workspace=workspace, priority="critical",
                                     payload={"datasource_name": "x"}, occurred_at=_now())
            transaction.set_rollback(True)

    def emit_many():
        with transaction.atomic():
            for _ in range(n):
                event_emit(critical, workspace=workspace, payload={"datasource_name": "x"})
            transaction.set_rollback(True)

    floor, _ = best_of(floor_insert)
    report("floor: Event insert", n, floor, floor)
    emit_time, _ = best_of(emit_many)
    report("emit() (validate + insert + on_commit)", n, emit_time, floor)

    events = n // 10

    def floor_fanout():
        with transaction.atomic():
            for _ in range(events):
                Notification.objects.bulk_create(
                    Notification(user=u, priority="critical", title="x") for u in users)
            transaction.set_rollback(True)

    def route_many():
        with transaction.atomic():
            for _ in range(events):
                event = event_emit(critical, workspace=workspace, payload={"datasource_name": "x"})
                event_route(event_id=event.pk)
            transaction.set_rollback(True)

    floor, _ = best_of(floor_fanout)
    report(f"floor: bulk insert {members} notifications", events * members, floor, floor)
    route_time, _ = best_of(route_many)
    report(f"route critical to {members} members", events * members, route_time, floor)

    def flush_many():
        with transaction.atomic():
            for _ in range(events):
                event = event_emit(medium, workspace=workspace, payload={"query_name": "q"})
                event_route(event_id=event.pk)
        started = time.perf_counter()
        digest_flush(bucket="5m")
        elapsed = time.perf_counter() - started
        Delivery.objects.all().delete()
        Notification.objects.all().delete()
        return elapsed

    def floor_items():
        with transaction.atomic():
            for _ in range(events):
                event = Event.objects.create(event_type=medium, workspace=workspace,
                                             priority="medium", occurred_at=_now())
                Delivery.objects.bulk_create(
                    Delivery(event=event, channel="in_app", user=u, priority="medium")
                    for u in users)
            transaction.set_rollback(True)

    floor, _ = best_of(floor_items)
    flush_time = min(flush_many() for _ in range(3))
    report(f"floor: write {events * members} pending items", events * members, floor, floor)
    report(f"flush 5m: {events * members} items -> {members} digests", events * members,
           flush_time, floor)


def _now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    main()
