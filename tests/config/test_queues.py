"""The priority lane and connection reuse, with real processes.

Each worker test runs its own ``redis-server`` on a free loopback port and its own worker
pointed at it, so the session worker (which serves every queue of the shared broker) never
takes part; every process is stopped however the test ends.
"""

import base64
import json
import shutil
import socket
import subprocess
import sys
import uuid

import pytest
import redis
from celery import Celery
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from config import control_plane
from config.celery import app
from events import emit
from events.models import Event
from notifications.models import Notification
from tests.support import ROOT, stop_tree, subprocess_env, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def test_critical_and_high_routing_is_on_the_urgent_queue_batched_on_events():
    route = app.amqp.router.route
    assert route({}, control_plane.EVENT_ROUTE_URGENT)["queue"].name == "urgent"
    assert route({}, control_plane.EVENT_ROUTE)["queue"].name == "events"
    assert route({}, control_plane.OUTBOX_SWEEP)["queue"].name == "urgent"
    assert route({}, control_plane.DELIVERY_SEND)["queue"].name == "deliveries"
    app.loader.import_default_modules()
    assert {control_plane.EVENT_ROUTE, control_plane.EVENT_ROUTE_URGENT} <= set(app.tasks)


def test_procfile_gives_the_urgent_queue_a_worker_of_its_own():
    workers = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if " worker " in command:
            queues = command.split("--queues ")[1].split()[0].split(",")
            workers[name] = queues
    assert workers["urgent"] == ["urgent"]
    served = {queue for queues in workers.values() for queue in queues}
    assert served == {"urgent", "events", "deliveries", "digests", "webhooks", "bulk"}


# --- real processes ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_broker(tmp_path, postgres):
    """A throwaway redis-server; this thread's Celery app publishes to it during the test."""
    if not shutil.which(REDIS_SERVER):
        pytest.skip("needs redis-server")
    port = free_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=5)
    lane_app = Celery("lane-test", set_as_current=False)
    lane_app.config_from_object("django.conf:settings", namespace="CELERY")
    # Publishing uses the write URL (CELERY_BROKER_URL in the environment beats broker_url).
    lane_app.conf.broker_write_url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _pings(client), timeout=60, message=f"redis-server on port {port}")
        lane_app.set_current()
        yield lane_app, client
    finally:
        app.set_current()
        lane_app.close()
        server.kill()
        server.wait()


def _pings(client) -> bool:
    try:
        return client.ping()
    except (redis.RedisError, OSError):
        return False


@pytest.fixture
def start_process(tmp_path):
    started = []

    def start(name, args, *, env, ready):
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        started.append(process)
        wait_until(lambda: ready in log_path.read_text() or process.poll() is not None,
                   timeout=90, message=f"{name} to start")
        assert process.poll() is None, f"{name} exited:\n{log_path.read_text()[-3000:]}"
        return process

    try:
        yield start
    finally:
        for process in started:
            stop_tree(process, grace=20)


def backends(application_name: str) -> list[tuple[int, object]]:
    """(pid, backend start) of this database's PostgreSQL sessions opened by one process."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s ORDER BY pid",
            [application_name],
        )
        return cursor.fetchall()


@pytest.mark.worker
def test_critical_is_routed_while_a_backlog_waits_and_tasks_reuse_one_connection(
        live_db, private_broker, start_process, make_workspace, tmp_path):
    _, broker = private_broker
    workspace = make_workspace(members=2)
    backlog = 30
    with transaction.atomic():  # one routing request on commit, to "events"
        medium = [emit("query.long_running_query", workspace=workspace,
                       payload={"query_name": f"q{i}"}) for i in range(backlog)]
    first = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "warehouse"})
    # Where the messages went: one request for the whole backlog on "events" (routed in
    # batches), the critical event's own message on "urgent".
    assert (broker.llen("events"), broker.llen("urgent")) == (1, 1)

    # A worker for the urgent queue only; nobody serves "events".
    app_name = f"lane-{uuid.uuid4().hex[:12]}"
    start_process("urgent-worker", [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
        "--queues", "urgent", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-n", "urgent-test@%h",
    ], env=subprocess_env(CELERY_BROKER_URL=private_broker[0].conf.broker_write_url,
                          PGAPPNAME=app_name), ready="ready.")

    wait_until(lambda: Notification.objects.filter(event=first).count() == 2, timeout=90,
               message="the critical event's notifications")
    assert Event.objects.filter(pk__in=[e.pk for e in medium],
                                status=Event.Status.PENDING).count() == backlog
    assert broker.llen("events") == 1
    # The task's connection outlived the task (CONN_MAX_AGE), and the next task uses it.
    after_first = backends(app_name)
    assert len(after_first) == 1, after_first

    second = emit("data_source.connection_lost", workspace=workspace,
                  payload={"datasource_name": "lake"})
    wait_until(lambda: Notification.objects.filter(event=second).count() == 2, timeout=90,
               message="the second critical event's notifications")
    assert backends(app_name) == after_first

    # The database ends the worker's session (a restart, an idle timeout): the next task
    # finds it closed before its first query and opens another; it neither fails nor
    # waits for a retry.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [after_first[0][0]])
    wait_until(lambda: not backends(app_name), timeout=30, message="the session to end")
    third = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "lakehouse"})
    wait_until(lambda: Notification.objects.filter(event=third).count() == 2, timeout=90,
               message="the third critical event's notifications")
    assert len(backends(app_name)) == 1
    log = (tmp_path / "urgent-worker.log").read_text()
    assert "retry" not in log and "Error" not in log, log[-3000:]


@pytest.mark.worker
def test_web_requests_reuse_one_connection(live_db, postgres, start_process, user):
    import requests

    token = Token.objects.create(user=user).key
    port = free_port()
    app_name = f"web-{uuid.uuid4().hex[:12]}"
    start_process("gunicorn", [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", "1",
    ], env=subprocess_env(PGAPPNAME=app_name), ready="Booting worker")

    def get():
        try:
            response = requests.get(f"http://127.0.0.1:{port}/api/notifications/unread-count/",
                                    headers={"Authorization": f"Token {token}"}, timeout=10)
        except requests.RequestException:
            return None
        return response

    first = wait_until(get, timeout=90, message="gunicorn to answer")
    assert first.status_code == 200, first.text
    after_first = backends(app_name)
    assert len(after_first) == 1, after_first
    for _ in range(3):
        assert get().status_code == 200
    assert backends(app_name) == after_first


def queued(broker, queue) -> list[str]:
    """The ids of the deliveries whose sends wait in ``queue`` (one per message, or a batch)."""
    ids = []
    for message in broker.lrange(queue, 0, -1):
        _, kwargs, _ = json.loads(base64.b64decode(json.loads(message)["body"]))
        ids += kwargs.get("delivery_ids") or [kwargs["delivery_id"]]
    return sorted(ids)


def sends(event) -> list[str]:
    """The ids of ``event``'s email deliveries."""
    from notifications.models import Delivery

    return sorted(str(pk) for pk in Delivery.objects.filter(event=event, channel="email")
                  .values_list("pk", flat=True))


def test_sends_of_batched_priorities_never_queue_with_critical_and_high_sends(
        private_broker, make_workspace, django_capture_on_commit_callbacks):
    """With email digests switched off, medium emails are sent one by one: on the batched
    lane's send queue, so a medium backlog never delays a critical email."""
    from channels_app.services.digests import digest_setting_set
    from events.models import EventType
    from notifications.models import Delivery, RoutingRule
    from notifications.routing.route import event_route

    _, broker = private_broker
    workspace = make_workspace(members=2)
    RoutingRule.objects.create(event_type=EventType.objects.get(key="query.long_running_query"),
                               channels=["in_app", "email"])
    digest_setting_set(channel="email", digest_enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        medium = emit("query.long_running_query", workspace=workspace,
                      payload={"query_name": "nightly"})
        event_route(event_id=medium.pk)
    with django_capture_on_commit_callbacks(execute=True):
        critical = emit("data_source.connection_lost", workspace=workspace,
                        payload={"datasource_name": "warehouse"})
        event_route(event_id=critical.pk)

    assert Delivery.objects.filter(event=medium, channel="email", bucket="").count() == 2
    assert queued(broker, "deliveries") == sends(critical)
    assert queued(broker, "digests") == sends(medium)

