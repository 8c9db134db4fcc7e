"""Digests: which priorities wait in which bucket, and each pending item sent exactly once."""

import json
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient

from channels_app.models import DigestSetting
from config import control_plane
from events import emit
from events.models import Event
from notifications.models import Delivery, Digest, Notification
from notifications.services.digests import digest_claim, digest_flush
from tests.support import (
    ROOT,
    emit_and_route,
    run_concurrently,
    stop_tree,
    subprocess_env,
    wait_until,
)

CRITICAL = "data_source.connection_lost"
HIGH = "query.query_failed"
MEDIUM = "query.long_running_query"
LOW = "policy.policy_created"
INFO = "data_source.schema_change"
BUCKETS = ["5m", "15m", "1h"]


def delivered_event_ids(user) -> list[str]:
    """Every event the user was told about, once per mention: alone or inside a digest."""
    ids = []
    for notification in Notification.objects.filter(user=user):
        if notification.kind == Notification.Kind.DIGEST:
            ids.extend(item["event_id"] for item in notification.items)
        else:
            ids.append(str(notification.event_id))
    return ids


def digests_of(user):
    return list(Notification.objects.filter(user=user, kind=Notification.Kind.DIGEST))


def rest_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- delivery planning and timing --------------------------------------------------------

@pytest.mark.parametrize("event_type", [CRITICAL, HIGH])
def test_critical_and_high_are_notifications_before_any_flush(db, make_workspace, event_type):
    workspace = make_workspace(members=2)

    event = emit_and_route(event_type, workspace, datasource_name="Snowflake", query_name="nightly")

    for member in workspace.people:
        assert delivered_event_ids(member) == [str(event.pk)]
        assert not digests_of(member)
    assert not Delivery.objects.filter(channel="in_app").exists()


@pytest.mark.parametrize(
    ("event_type", "priority", "bucket"),
    [(MEDIUM, "medium", "5m"), (LOW, "low", "15m"), (INFO, "info", "1h")],
)
def test_batched_priority_waits_for_its_own_bucket(db, make_workspace, event_type, priority,
                                                   bucket):
    workspace = make_workspace(members=1)
    member = workspace.people[0]

    event = emit_and_route(event_type, workspace, datasource_name="Snowflake")

    assert not Notification.objects.exists()
    pending = Delivery.objects.get()
    assert (pending.bucket, pending.status, pending.priority) == (bucket, "pending", priority)
    for other in BUCKETS:
        if other != bucket:
            assert digest_flush(bucket=other).digests_sent == 0
    assert not Notification.objects.exists()

    result = digest_flush(bucket=bucket)

    assert (result.claimed_items, result.digests_sent) == (1, 1)
    [digest] = digests_of(member)
    assert digest.priority == priority
    assert [item["event_id"] for item in digest.items] == [str(event.pk)]
    assert [item["priority"] for item in digest.items] == [priority]


def test_digests_switched_off_send_medium_at_once_in_app(db, make_workspace):
    DigestSetting.objects.update_or_create(channel="in_app",
                                           defaults={"digest_enabled": False})
    workspace = make_workspace(members=2)

    medium = emit_and_route(MEDIUM, workspace, query_name="slow report")
    low = emit_and_route(LOW, workspace, policy_name="PII")

    for member in workspace.people:
        assert sorted(delivered_event_ids(member)) == sorted([str(medium.pk), str(low.pk)])
        titles = set(Notification.objects.filter(user=member).values_list("title", flat=True))
        assert titles == {"Long-running query: slow report", "Policy created: PII"}
    assert not Delivery.objects.filter(status="pending", channel="in_app").exists()
    assert not Delivery.objects.filter(channel="in_app").exclude(bucket="").exists()


def test_digests_on_keep_critical_and_high_immediate(db, make_workspace):
    DigestSetting.objects.update_or_create(channel="in_app",
                                           defaults={"digest_enabled": True})
    workspace = make_workspace(members=1)

    critical = emit_and_route(CRITICAL, workspace, datasource_name="Snowflake")
    high = emit_and_route(HIGH, workspace, query_name="nightly")

    assert sorted(delivered_event_ids(workspace.people[0])) == sorted([str(critical.pk),
                                                                       str(high.pk)])
    assert not Delivery.objects.filter(channel="in_app").exists()


def test_several_medium_events_become_one_digest_listing_them(db, make_workspace):
    workspace = make_workspace(members=1)
    member = workspace.people[0]
    events = [emit_and_route(MEDIUM, workspace, query_name=f"report {n}") for n in range(3)]
    role = emit_and_route("user.role_changed", workspace, email="bob@example.com")
    api = rest_client(member)
    assert api.get("/api/notifications/unread-count/").json()["count"] == 0

    result = digest_flush(bucket="5m")

    assert (result.claimed_items, result.digests_sent) == (4, 1)
    [digest] = digests_of(member)
    assert digest.title == "4 medium notifications"
    assert [(item["event_id"], item["event_type"], item["title"], item["priority"],
             item["category"], item["workspace_id"]) for item in digest.items] == [
        *[(str(e.pk), MEDIUM, f"Long-running query: report {n}", "medium", "queries",
           workspace.public_id) for n, e in enumerate(events)],
        (str(role.pk), "user.role_changed", "Role changed: bob@example.com", "medium", "users",
         workspace.public_id),
    ]
    assert all(item["occurred_at"] for item in digest.items)

    count = api.get("/api/notifications/unread-count/").json()
    assert count["count"] == 1
    assert count["by_priority"]["medium"] == 1
    [listed] = api.get("/api/notifications/").json()["results"]
    assert listed["kind"] == "digest"
    assert listed["digest_id"] == str(digest.digest_id)
    assert listed["item_count"] == 4
    assert listed["priority"] == "medium"
    assert [item["event_id"] for item in listed["items"]] == [str(e.pk) for e in [*events, role]]


def test_each_member_gets_one_digest_and_a_second_flush_sends_nothing(db, make_workspace):
    workspace = make_workspace(members=2)
    events = [emit_and_route(MEDIUM, workspace, query_name=f"q{n}") for n in range(3)]

    digest_flush(bucket="5m")
    again = digest_flush(bucket="5m")

    assert (again.claimed_items, again.digests_sent) == (0, 0)
    for member in workspace.people:
        [digest] = digests_of(member)
        assert sorted(item["event_id"] for item in digest.items) == sorted(str(e.pk)
                                                                           for e in events)
    assert Notification.objects.count() == 2
    assert Digest.objects.filter(status="delivered").count() == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_flush_leaves_other_buckets_pending(db, make_workspace):
    workspace = make_workspace(members=1)
    emit_and_route(MEDIUM, workspace, query_name="q")
    low = emit_and_route(LOW, workspace, policy_name="PII")

    digest_flush(bucket="5m")

    assert Delivery.objects.get(event=low).status == "pending"
    assert [n.priority for n in digests_of(workspace.people[0])] == ["medium"]


def test_unknown_bucket_is_refused(db):
    with pytest.raises(ValueError, match="unknown bucket '2m'"):
        digest_flush(bucket="2m")


# --- exactly once ------------------------------------------------------------------------

def test_flush_that_died_after_claiming_is_finished_with_the_same_digest(db, make_workspace):
    workspace = make_workspace(members=2)
    events = [emit_and_route(MEDIUM, workspace, query_name=f"q{n}") for n in range(3)]

    assert digest_claim(bucket="5m").items == 6  # ... and the flush died here, before sending
    claimed = {d.user_id: d.pk for d in Digest.objects.all()}
    assert set(Digest.objects.values_list("status", flat=True)) == {"claimed"}
    assert not Notification.objects.exists()

    result = digest_flush(bucket="5m")

    assert (result.claimed_items, result.digests_sent) == (0, 2)
    for member in workspace.people:
        [digest] = digests_of(member)
        assert digest.digest_id == claimed[member.pk]
        assert sorted(delivered_event_ids(member)) == sorted(str(e.pk) for e in events)
    assert Digest.objects.count() == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}

    third = digest_flush(bucket="5m")

    assert (third.claimed_items, third.digests_sent) == (0, 0)
    assert Notification.objects.count() == 2


def assert_each_item_delivered_once(users, events):
    """Every delivery in exactly one sent digest; every user told of every event once."""
    deliveries = list(Delivery.objects.filter(channel="in_app"))
    assert len(deliveries) == len(users) * len(events)
    assert all(d.digest_id is not None for d in deliveries)
    assert {d.status for d in deliveries} == {"delivered"}
    assert set(Digest.objects.values_list("status", flat=True)) == {"delivered"}
    digest_sizes = Counter(d.digest_id for d in deliveries)
    for digest in Digest.objects.all():
        assert digest.item_count == digest_sizes[digest.pk]
    # One notification per digest, and nothing but digests.
    assert sorted(Notification.objects.values_list("digest_id", flat=True)) == sorted(
        Digest.objects.values_list("pk", flat=True)
    )
    expected = sorted(str(e.pk) for e in events)
    for user in users:
        assert sorted(delivered_event_ids(user)) == expected


@pytest.fixture
def pending_medium(live_db, make_workspace):
    """5 members x 20 medium events, all waiting in the 5 min bucket (committed)."""
    workspace = make_workspace(members=5)
    events = [emit_and_route(MEDIUM, workspace, query_name=f"q{n}") for n in range(20)]
    assert Delivery.objects.filter(status="pending", bucket="5m").count() == 100
    return workspace.people, events


def test_two_concurrent_flushes_send_each_item_once(postgres, pending_medium):
    users, events = pending_medium

    results = run_concurrently(lambda: digest_flush(bucket="5m"), times=2)

    assert sum(r.claimed_items for r in results) == 100
    assert sum(r.digests_sent for r in results) == Digest.objects.count()
    assert_each_item_delivered_once(users, events)


def test_two_overlapping_flush_commands_send_each_item_once(postgres, pending_medium):
    users, events = pending_medium
    command = [sys.executable, "manage.py", "flush_digests", "--bucket", "5m"]

    processes = [subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
    try:
        outputs = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            stop_tree(process)

    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "Bucket 5m:" in stdout
    assert_each_item_delivered_once(users, events)


HOLD_CLAIMED_DIGESTS = """
import sys
import django
django.setup()
from django.db import transaction
from notifications.models import Digest
with transaction.atomic():
    locked = list(Digest.objects.select_for_update().filter(status="claimed"))
    print(f"locked={len(locked)}", flush=True)
    sys.stdin.read()  # a flush in the middle of sending: holds the row locks until killed
"""


def test_a_flush_killed_while_sending_releases_its_digests_to_the_next_flush(
    postgres, live_db, make_workspace
):
    workspace = make_workspace(members=2)
    for n in range(3):
        emit_and_route(MEDIUM, workspace, query_name=f"q{n}")
    assert digest_claim(bucket="5m").items == 6
    claimed_ids = set(Digest.objects.values_list("pk", flat=True))
    sender = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIMED_DIGESTS], cwd=ROOT, text=True,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="config.settings"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert sender.stdout.readline().strip() == "locked=2"

        during = digest_flush(bucket="5m")  # overlaps the sender: skips its locked digests
        assert (during.claimed_items, during.digests_sent) == (0, 0)
        assert not Notification.objects.exists()
    finally:
        sender.kill()  # the sender dies mid-send: its transaction and locks go with it
        sender.wait(timeout=30)

    after = digest_flush(bucket="5m")
    assert after.digests_sent == 2
    assert set(Notification.objects.values_list("digest_id", flat=True)) == claimed_ids
    assert_each_item_delivered_once(workspace.people, list(Event.objects.all()))
    assert digest_flush(bucket="5m").digests_sent == 0


# --- cost ----------------------------------------------------------------------------------

def flush_queries(make_workspace, per_recipient: int) -> int:
    workspace = make_workspace(members=2)
    for n in range(per_recipient):
        emit_and_route(MEDIUM, workspace, query_name=f"q{n}")
    with CaptureQueriesContext(connection) as queries:
        result = digest_flush(bucket="5m")
    assert (result.claimed_items, result.digests_sent) == (2 * per_recipient, 2)
    Delivery.objects.all().delete()
    return len(queries)


def test_flush_queries_do_not_grow_with_the_number_of_items(db, make_workspace):
    # 2 recipients keep the claim's bulk update in one batch even on SQLite (249 rows).
    assert flush_queries(make_workspace, 10) == flush_queries(make_workspace, 100)


# --- schedule and command -----------------------------------------------------------------

def test_sync_schedule_writes_the_flushes_and_the_outbox_sweep(db):
    from config.celery import app

    call_command("sync_schedule", stdout=StringIO())
    rows = {
        (task.task, json.loads(task.kwargs).get("bucket")): task
        for task in PeriodicTask.objects.select_related("interval")
    }
    expected = {
        (control_plane.DIGEST_FLUSH, "5m"): (5, IntervalSchedule.MINUTES),
        (control_plane.DIGEST_FLUSH, "15m"): (15, IntervalSchedule.MINUTES),
        (control_plane.DIGEST_FLUSH, "1h"): (1, IntervalSchedule.HOURS),
        (control_plane.OUTBOX_SWEEP, None): (30, IntervalSchedule.SECONDS),
    }
    for key, (every, period) in expected.items():
        task = rows[key]
        assert (task.interval.every, task.interval.period) == (every, period), key
        assert task.enabled, key
    # Beat only ever sends names the worker knows.
    app.loader.import_default_modules()
    assert {control_plane.DIGEST_FLUSH, control_plane.OUTBOX_SWEEP,
            control_plane.EVENT_ROUTE} <= set(app.tasks)
    assert app.amqp.router.route({}, control_plane.DIGEST_FLUSH)["queue"].name == "digests"
    assert app.amqp.router.route({}, control_plane.EVENT_ROUTE)["queue"].name == "events"


def test_beat_reads_the_flush_intervals(db):
    from django_celery_beat.schedulers import ModelEntry

    from config.celery import app

    call_command("sync_schedule", stdout=StringIO())
    every = {
        json.loads(task.kwargs).get("bucket"): ModelEntry(task, app=app).schedule.run_every
        for task in PeriodicTask.objects.filter(task=control_plane.DIGEST_FLUSH)
    }
    assert every == {"5m": timedelta(minutes=5), "15m": timedelta(minutes=15),
                     "1h": timedelta(hours=1)}


def test_flush_digests_command(db, make_workspace):
    workspace = make_workspace(members=2)
    emit_and_route(MEDIUM, workspace, query_name="q1")
    emit_and_route(MEDIUM, workspace, query_name="q2")
    out = StringIO()

    call_command("flush_digests", "--bucket", "5m", stdout=out)

    assert "Bucket 5m: 4 items claimed, 2 digests sent." in out.getvalue()
    assert Notification.objects.filter(kind="digest").count() == 2


@pytest.mark.parametrize("args", [["--bucket", "2m"], []])
def test_flush_digests_command_refuses_unknown_or_missing_bucket(db, args):
    with pytest.raises(CommandError, match="bucket"):
        call_command("flush_digests", *args)


# --- through the worker --------------------------------------------------------------------

@pytest.mark.worker
def test_flush_task_on_the_worker_delivers_the_digest(live_db, celery_worker, make_workspace):
    from notifications.tasks import digest_flush as digest_flush_task

    workspace = make_workspace(members=2)
    event = emit(MEDIUM, workspace=workspace, payload={"query_name": "slow"})
    wait_until(lambda: Delivery.objects.filter(event=event, status="pending").count() == 2,
               message="the worker to route the medium event into the 5m bucket")
    assert not Notification.objects.exists()

    digest_flush_task.delay(bucket="5m")

    wait_until(lambda: Notification.objects.filter(kind="digest").count() == 2,
               message="the worker's 5m flush")
    for member in workspace.people:
        [digest] = digests_of(member)
        assert [item["event_id"] for item in digest.items] == [str(event.pk)]
        assert digest.title == "1 medium notification"


@pytest.mark.worker
def test_flush_now_over_the_api_is_done_by_the_worker(live_db, celery_worker, make_workspace,
                                                      staff):
    workspace = make_workspace(members=2)
    event = emit(MEDIUM, workspace=workspace, payload={"query_name": "slow"})
    wait_until(lambda: Delivery.objects.filter(event=event, status="pending").count() == 2,
               message="the worker to route the medium event into the 5m bucket")
    client = APIClient()
    client.force_authenticate(staff)

    response = client.post("/api/digests/flush/", {"bucket": "5m"}, format="json")

    assert response.status_code == 202, response.content
    wait_until(lambda: Notification.objects.filter(kind="digest").count() == 2, timeout=60,
               message="the worker to run the queued 5m flush")
    for member in workspace.people:
        [digest] = digests_of(member)
        assert [item["event_id"] for item in digest.items] == [str(event.pk)]
    assert not Delivery.objects.filter(status="pending").exists()


def test_flush_checks_the_audience_again(make_workspace):
    workspace = make_workspace(members=3)
    stays, leaves, deactivated = workspace.people
    emit_and_route(MEDIUM, workspace, query_name="secret report")
    workspace.memberships.filter(user=leaves).delete()
    deactivated.is_active = False
    deactivated.save()

    result = digest_flush(bucket="5m")

    assert result.digests_sent == 1
    assert list(Notification.objects.values_list("user", flat=True)) == [stays.pk]
    assert set(Delivery.objects.filter(user__in=[leaves, deactivated])
               .values_list("status", flat=True)) == {"cancelled"}
    assert Delivery.objects.get(user=stays).status == "delivered"
    assert sorted(Digest.objects.values_list("status", flat=True)) == [
        "cancelled", "cancelled", "delivered"]
    assert digest_flush(bucket="5m").digests_sent == 0
