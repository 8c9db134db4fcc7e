"""Operating it with real processes: gunicorn with 2 workers and a prefork Celery worker
summed in one scrape, a killed web worker's counts kept; /readyz and ``manage.py status``
naming beat and the broker once they are killed; every process's JSON log lines.

Each test runs its own ``redis-server`` on a free port (as tests/test_faults.py does), so
no other worker takes its tasks, and its own metrics directory; every process it starts is
stopped however it ends.
"""

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from config import control_plane
from notifications.models import Delivery, Notification
from tests.channels_app.webhook_servers import Receiver
from tests.support import (
    HTTP_NOT_YET,
    ROOT,
    free_port,
    process_tree,
    stop_tree,
    subprocess_env,
    wait_until,
)
from tests.test_faults import REDIS_SERVER, RedisServer

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs redis-server"),
]
ALL_QUEUES = ",".join(control_plane.QUEUES)
SLACK = 60


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Stack:
    """gunicorn, Celery workers and beat on the test database and a private Redis."""

    def __init__(self, tmp_path, redis_url, **env):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = subprocess_env(CELERY_BROKER_URL=redis_url, WEB_CONCURRENCY="2",
                                  PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), **env)
        (tmp_path / "metrics").mkdir(exist_ok=True)
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name, args, ready=None):
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)
        process.log_path = log_path
        self.started[name] = process
        if ready:
            wait_until(lambda: ready in log_path.read_text() or process.poll() is not None,
                       timeout=SLACK, message=f"{name} to start")
            assert process.poll() is None, f"{name} exited:\n{log_path.read_text()[-3000:]}"
        return process

    def web(self, workers=2):
        process = self.start("web", [
            sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
            "--access-logfile", "-"])
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=5).ok, timeout=SLACK,
                   ignore=HTTP_NOT_YET, message="gunicorn to answer")
        return process

    def worker(self, name, *, pool="solo", concurrency=1, queues=ALL_QUEUES):
        return self.start(name, [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", pool,
            "--concurrency", str(concurrency), "--queues", queues, "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
            f"{name}@%h"], ready="ready.")

    def beat(self):
        return self.start("beat", [
            sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
            "--max-interval", "1"], ready="beat: Starting")

    def stop(self, name, sig=signal.SIGTERM):
        process = self.started[name]
        if sig == signal.SIGTERM:
            stop_tree(process, grace=30)
        else:
            process.send_signal(sig)
            process.wait(timeout=30)

    def stop_all(self):
        for process in self.started.values():
            stop_tree(process, grace=30)

    def readyz(self):
        response = requests.get(f"{self.url}/readyz", timeout=10)
        return response.status_code, response.json()

    def scrape(self) -> dict[tuple, float]:
        response = requests.get(f"{self.url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(response.text)
                for s in family.samples}


@pytest.fixture
def stack(tmp_path, redis_server):
    stacks = []

    def make(**env):
        stacks.append(Stack(tmp_path, redis_server.url, **env))
        return stacks[-1]

    try:
        yield make
    finally:
        for made in stacks:
            made.stop_all()


def total(scraped, name, **labels) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (sample, pairs), value in scraped.items()
               if sample == name and wanted <= set(pairs))


def heartbeat_every_second():
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.create(name="heartbeat", task=control_plane.BEAT_HEARTBEAT,
                                interval=every)


def metrics_files(stack, pid) -> list[str]:
    return sorted(p.name for p in (stack.tmp_path / "metrics").glob(f"*_{pid}.db"))


# --- one scrape sums every process --------------------------------------------------------

def test_one_scrape_sums_two_gunicorn_workers_and_a_prefork_pool(live_db, make_workspace,
                                                                 make_user, stack):
    n, members = 20, 2
    workspace = make_workspace(members=members)
    token = Token.objects.create(user=make_user("root", superuser=True)).key
    ops = stack()
    web = ops.web(workers=2)
    worker = ops.worker("pool", pool="prefork", concurrency=2)

    def emit(i):
        response = requests.post(
            f"{ops.url}/api/events/", timeout=30, headers={"Authorization": f"Token {token}"},
            json={"event_type": "data_source.connection_lost",
                  "workspace_id": workspace.public_id, "payload": {"datasource_name": f"db{i}"}})
        assert response.status_code == 201, response.text

    with ThreadPoolExecutor(2) as pool:  # two at a time: both gunicorn workers take some
        list(pool.map(emit, range(n)))
    wait_until(lambda: Notification.objects.count() == n * members, timeout=SLACK,
               message=f"{n * members} notifications routed by the pool")
    wait_until(lambda: total(ops.scrape(), "datafi_tasks_total", state="success",
                             task=control_plane.EVENT_ROUTE_URGENT) == n, timeout=SLACK,
               message="the pool's counts")  # a task's own count lands as it returns

    scraped = ops.scrape()
    assert total(scraped, "datafi_events_emitted_total",
                 event_type="data_source.connection_lost", priority="critical") == n
    assert total(scraped, "datafi_notifications_total", channel="in_app") == n * members
    assert total(scraped, "datafi_notifications_total", channel="email") == n * members
    assert total(scraped, "datafi_deliveries_total", channel="in_app",
                 outcome="delivered") == n * members
    assert total(scraped, "datafi_delivery_latency_seconds_count", channel="in_app") == \
        n * members
    assert total(scraped, "datafi_task_duration_seconds_count",
                 task=control_plane.EVENT_ROUTE_URGENT) == n
    # Each process counted into files of its own: both web workers served emits.
    web_workers = [p.pid for p in process_tree(web.pid) if p.pid != web.pid]
    assert len(web_workers) == 2 and all(metrics_files(ops, pid) for pid in web_workers)
    pool_pids = [p.pid for p in process_tree(worker.pid) if p.pid != worker.pid]
    assert any(metrics_files(ops, pid) for pid in pool_pids)

    # A web worker killed outright: gunicorn replaces it; what it counted stays counted.
    killed = web_workers[0]
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: len([p for p in process_tree(web.pid) if p.pid != web.pid
                            and p.pid not in web_workers]) == 1, timeout=SLACK,
               message="gunicorn to replace the killed worker")
    assert total(ops.scrape(), "datafi_events_emitted_total") == n

    # The pool stopped: each pool process marks itself dead, so its live gauge (tasks in
    # progress) is dropped; its counters stay.
    assert any(name.startswith("gauge_livesum") for pid in pool_pids
               for name in metrics_files(ops, pid))
    ops.stop("pool")
    assert not [name for pid in pool_pids for name in metrics_files(ops, pid)
                if name.startswith("gauge_livesum")]
    assert total(ops.scrape(), "datafi_tasks_total", task=control_plane.EVENT_ROUTE_URGENT) == n


# --- readiness names what is down ----------------------------------------------------------

def test_readyz_and_status_name_beat_then_the_broker_once_they_are_killed(
        live_db, stack, redis_server, tmp_path):
    heartbeat_every_second()
    ops = stack(DATAFI_BEAT_HEARTBEAT_MAX_AGE_SECONDS="3",
                CACHE_URL=f"filecache://{tmp_path / 'cache'}")
    ops.web(workers=1)
    ops.worker("urgent", queues="urgent")
    ops.beat()
    wait_until(lambda: ops.readyz() == (200, {"status": "ok"}), timeout=SLACK,
               ignore=HTTP_NOT_YET, message="ready with beat's first heartbeat")

    ops.stop("beat", signal.SIGKILL)
    wait_until(lambda: ops.readyz() == (503, {"status": "unavailable", "failing": ["beat"]}),
               timeout=SLACK, message="/readyz to name beat")

    redis_server.stop()
    failing = {"status": "unavailable", "failing": ["broker", "beat"]}
    wait_until(lambda: ops.readyz() == (503, failing), timeout=SLACK,
               message="/readyz to name the broker and beat")
    status = subprocess.run([sys.executable, "manage.py", "status"], cwd=ROOT, env=ops.env,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 1, status.stdout + status.stderr
    lines = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()
             if line.startswith("  ") and len(line.split()) > 1}
    assert (lines["database"], lines["cache"]) == ("ok", "ok")
    assert (lines["broker"], lines["beat"]) == ("FAILING", "FAILING")
    assert "not ready: broker, beat" in status.stderr

    redis_server.start()  # back (empty); beat again: ready again
    ops.beat()
    wait_until(lambda: ops.readyz() == (200, {"status": "ok"}), timeout=SLACK,
               message="ready again")


# --- LOG_FORMAT=json in every process -----------------------------------------------------

def json_lines(process) -> list[dict]:
    """Every line the process wrote, parsed: the test fails on one that is not JSON."""
    records = []
    for number, line in enumerate(process.log_path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"{process.log_path.name}:{number} is not JSON: {line[:300]}")
    return records


def test_every_process_logs_json_lines_with_the_ids_they_are_about(
        live_db, make_workspace, make_user, stack):
    heartbeat_every_second()
    workspace = make_workspace(members=1)
    token = Token.objects.create(user=make_user("root", superuser=True)).key
    receiver = Receiver()
    try:
        from channels_app.services.webhooks import webhook_endpoint_save

        with pytest.MonkeyPatch.context() as patch:
            from django.conf import settings

            patch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", True)
            webhook_endpoint_save(values={"name": "ops", "url": receiver.url()})
        ops = stack(LOG_FORMAT="json", CELERY_QUIET="1", WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
        ops.web(workers=1)
        ops.worker("worker", pool="prefork", concurrency=1)
        ops.beat()
        response = requests.post(
            f"{ops.url}/api/events/", timeout=30, headers={"Authorization": f"Token {token}"},
            json={"event_type": "data_source.connection_lost",
                  "workspace_id": workspace.public_id, "payload": {"datasource_name": "db"}})
        event_id = response.json()["id"]
        wait_until(lambda: Delivery.objects.filter(channel="webhook",
                                                   status="delivered").exists(),
                   timeout=SLACK, message="the webhook delivered")
        delivery_id = str(Delivery.objects.get(channel="webhook").pk)
        wait_until(lambda: f"delivery {delivery_id}: delivered"
                   in ops.started["worker"].log_path.read_text(), timeout=SLACK,
                   message="the send's log line")
    finally:
        receiver.stop()
    for name in ("web", "worker", "beat"):
        ops.stop(name)  # their shutdown lines too

    worker = json_lines(ops.started["worker"])
    # The sends of the event (email waits: not configured; the webhook is delivered), each
    # with its delivery, its event, its task and the queue it came from.
    sends = {r["queue"]: r for r in worker if r.get("event_id") == event_id}
    assert set(sends) == {"deliveries", "webhooks"}
    sent = sends["webhooks"]
    assert sent["message"] == f"delivery {delivery_id}: delivered"
    assert sent["delivery_id"] == delivery_id and sent["task_id"]
    assert sends["deliveries"]["message"].endswith(": waiting")
    assert {"time", "level", "logger", "process"} <= set(sent)
    assert any(r["message"].endswith("ready.") for r in worker)
    beat = json_lines(ops.started["beat"])
    assert any(r["message"].startswith("beat: Starting") for r in beat)
    web = json_lines(ops.started["web"])
    [access] = [r for r in web if r.get("path") == "/api/events/"]
    assert (access["method"], access["status"], access["logger"]) == (
        "POST", "201", "gunicorn.access")
    assert any(r["logger"] == "gunicorn.error" for r in web)
    assert not [p for p in psutil.process_iter() if p.pid in
                [proc.pid for proc in ops.started.values()] and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
