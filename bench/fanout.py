"""Issue 21's fan-out row: one critical event to 10,000 members of one workspace, routed
in-app only, until every notification is committed, beside an ``INSERT ... SELECT`` of the
same rows from the memberships, measured in the same run (best of 3 each).

    DATABASE_URL=postgres://... .venv/bin/python bench/fanout.py [--members 10000] [--profile]

Creates and drops its own database (``bench_fanout_<name>``). ``--profile`` prints a
cProfile of one more routing run, by cumulative time.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from events.models import Event, EventType, Membership, Workspace  # noqa: E402
from events.services.emit import event_emit  # noqa: E402
from notifications.in_app import event_title  # noqa: E402
from notifications.models import Notification, RoutingRule  # noqa: E402
from notifications.routing.route import event_route  # noqa: E402

CRITICAL = "data_source.connection_lost"


def fixtures(members: int) -> Workspace:
    User = get_user_model()
    users = User.objects.bulk_create(
        (User(username=f"m{i}", email=f"m{i}@example.com") for i in range(members)),
        batch_size=2000)
    workspace = Workspace.objects.create(name="fan-out")
    Membership.objects.bulk_create(
        (Membership(workspace=workspace, user=u) for u in users), batch_size=2000)
    RoutingRule.objects.create(event_type=EventType.objects.get(key=CRITICAL),
                               channels=["in_app"])
    return workspace


def emit(workspace) -> Event:
    with transaction.atomic():
        return event_emit(CRITICAL, workspace=workspace, payload={"datasource_name": "x"})


def route(workspace, members: int) -> float:
    """Route one committed critical event; seconds until its notifications are committed."""
    event = emit(workspace)
    started = time.perf_counter()
    event_route(event_id=event.pk)  # its own transaction: committed on return
    elapsed = time.perf_counter() - started
    assert Notification.objects.filter(event=event).count() == members
    return elapsed


def floor(workspace, members: int) -> float:
    """The same rows, written by one INSERT ... SELECT from the memberships."""
    event = emit(workspace)
    event_type = event.event_type
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Notification._meta.db_table} (user_id, kind, event_id, "
            "workspace_id, event_type_key, category, priority, title, items, created_at, "
            "repeat_count, updated_at) "
            "SELECT m.user_id, 'event', %s, m.workspace_id, %s, %s, %s, %s, '[]', now(), 0, "
            f"now() FROM {Membership._meta.db_table} m WHERE m.workspace_id = %s",
            [event.pk, event_type.key, event_type.category.slug, event.priority,
             event_title(event), workspace.pk])
    elapsed = time.perf_counter() - started
    assert Notification.objects.filter(event=event).count() == members
    return elapsed


def clear():
    Notification.objects.all().delete()
    Event.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Notification._meta.db_table}"
                       if connection.vendor == "postgresql" else "SELECT 1")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        parser.error("needs PostgreSQL: set DATABASE_URL=postgres://...")
    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = f"bench_fanout_{connection.settings_dict['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        workspace = fixtures(args.members)
        route(workspace, args.members)  # warm: caches, the routing configuration
        clear()
        routed, floors = [], []
        for _ in range(3):
            routed.append(route(workspace, args.members))
            clear()
            floors.append(floor(workspace, args.members))
            clear()
        best, best_floor = min(routed), min(floors)
        print(f"{connection.vendor}: one critical event to {args.members:,} members, in-app")
        print(f"  routed until committed: {best:.3f} s (runs: "
              f"{', '.join(f'{t:.3f}' for t in routed)})")
        print(f"  INSERT ... SELECT floor: {best_floor:.3f} s (runs: "
              f"{', '.join(f'{t:.3f}' for t in floors)})")
        print(f"  ratio: x{best / best_floor:.2f} (target: within 2x)")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            route(workspace, args.members)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
