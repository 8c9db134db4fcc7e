"""Issue 11's table, each figure beside its floor measured in the same run.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... bin/bench          # minutes
    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... bin/bench --big    # 10M rows

Creates and drops its own test database; starts its own workers (the Procfile's layout:
one for ``urgent``, one for the batched queues) and a gunicorn, and stops them however it
ends. Prints every row and writes ``bench/RESULTS.md`` (``RESULTS-big.md`` with ``--big``)
with the machine and the date. On SQLite or without Redis only the in-process rows run.
Absolute figures move with the machine's load; the ratios to floors measured in the same
run are what to compare.

The ``sends`` part (bench/sends.py, issue 21; ``--only sends`` alone) measures the send
paths from outside: email throughput of one critical event to 1,000 members (plain SMTP,
and STARTTLS + AUTH with a self-signed certificate trusted through ``SSL_CERT_FILE``)
beside smtplib over one reused connection and a new one per message; 1,000 critical
events to one webhook endpoint beside one ``requests.Session``; email and webhook latency
idle and under load beside two Celery hops + insert + send (bench/floor_app.py); an
in-app fan-out to 10,000 members beside ``INSERT ... SELECT``. The Procfile's workers at
default concurrency send to receivers in processes of their own (bench/receivers.py).
"""

import argparse
import contextlib
import datetime
import itertools
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from config.celery import app  # noqa: E402
from events.models import Event, EventType, Membership, Workspace  # noqa: E402
from events.services.emit import event_emit  # noqa: E402
from notifications.models import (  # noqa: E402
    Delivery,
    Digest,
    Mute,
    Notification,
    Silence,
    UserNotificationSettings,
)
from notifications.routing.route import event_route  # noqa: E402

CRITICAL = "data_source.connection_lost"
MEDIUM = "query.long_running_query"
PARTS = ("emit", "routing", "escalation", "flush", "workers", "read", "metrics", "sends")
ROWS = []  # (what, measured, floor, ratio or target note)


def row(what, measured, floor, ratio, target):
    ROWS.append((what, measured, floor, ratio, target))
    print(f"- {what}\n    measured: {measured}\n    floor:    {floor}\n    ratio:    {ratio}"
          f"   (target: {target})", flush=True)


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def pct(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def best(fn, repeat=3):
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return min(timings)


# --- fixtures ------------------------------------------------------------------------------

def make_workspace(name, members):
    User = get_user_model()
    users = User.objects.bulk_create(
        User(username=f"{name}-{i}", email=f"{name}-{i}@example.com") for i in range(members))
    workspace = Workspace.objects.create(name=name)
    Membership.objects.bulk_create(Membership(workspace=workspace, user=u) for u in users)
    return workspace, users


def wipe_routing_output():
    Notification.objects.all().delete()
    Delivery.objects.all().delete()
    Digest.objects.all().delete()
    Event.objects.all().delete()


class Processes:
    """Workers and gunicorn on the bench database; all stopped by ``stop_all``."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.started = []
        db = connection.settings_dict
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING",
                    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # the bench's loopback receiver
                    "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:"
                                    f"{db['PORT'] or 5432}/{db['NAME']}"}

    def start(self, name, args, ready):
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.started.append(process)
        deadline = time.monotonic() + 120
        while ready not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.02)
        return process

    def worker(self, name, queues, concurrency, *, nice=0):
        return self.start(name, [
            *(["nice", "-n", str(nice)] if nice else []),
            sys.executable, "-m", "celery", "-A", "config", "worker", "-n", f"{name}@%h",
            "--queues", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ], "ready.")

    def stop(self, process):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self):
        for process in self.started:
            self.stop(process)


class Readable:
    """Tells when an event's in-app notifications are committed, without polling.

    A statement trigger on the notification table (in the bench's own database only) sends
    ``NOTIFY`` with each new notification's event id; PostgreSQL delivers it when the
    inserting transaction commits, which is exactly when the notification becomes readable.
    The bench waits on its listening socket, so measuring takes no CPU from the workers
    (a 0.5 ms polling loop took most of a core on a 2-core machine).
    """

    CHANNEL = "bench_readable"

    def __init__(self):
        import psycopg

        table = Notification._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"""
                CREATE OR REPLACE FUNCTION bench_readable() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('{self.CHANNEL}', event_id::text)
                    FROM (SELECT DISTINCT event_id FROM new_rows
                          WHERE event_id IS NOT NULL) AS events;
                    RETURN NULL;
                END $$;
                DROP TRIGGER IF EXISTS bench_readable ON {table};
                CREATE TRIGGER bench_readable AFTER INSERT ON {table}
                REFERENCING NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION bench_readable();
            """)
        db = connection.settings_dict
        self.listener = psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"] or "postgres",
            dbname=db["NAME"], autocommit=True)
        self.listener.execute(f"LISTEN {self.CHANNEL}")
        self.seen = set()

    def wait(self, event_id, timeout=600):
        event_id = str(event_id)
        deadline = time.monotonic() + timeout
        while event_id not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"event {event_id} never became readable")
            for notify in self.listener.notifies(timeout=min(left, 1), stop_after=1):
                self.seen.add(notify.payload)
        self.seen.discard(event_id)

    def close(self):
        self.listener.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS bench_readable ON "
                           f"{Notification._meta.db_table}")


_SOURCES = itertools.count()


def emit_critical(workspace, readable):
    """One critical event, until its notifications are readable. A data source of its own
    each time: repeats of one source are grouped into the first notification (issue 16)."""
    started = time.perf_counter()
    event = event_emit(CRITICAL, workspace=workspace.public_id,
                       payload={"datasource_name": f"warehouse-{next(_SOURCES)}"})
    readable.wait(event.pk)
    return time.perf_counter() - started


# --- rows -----------------------------------------------------------------------------------

def bench_emit():
    """emit() in the caller, committed and published, by strings; flat in recipients."""
    ws1, _ = make_workspace("emit1", 1)
    ws1000, _ = make_workspace("emit1000", 1000)
    critical = EventType.objects.get(key=CRITICAL)
    n = 300

    def floor():  # the insert and the publish emit cannot avoid
        for _ in range(n):
            with transaction.atomic():
                event = Event.objects.create(
                    event_type=critical, workspace=ws1, priority="critical",
                    payload={"datasource_name": "x"}, occurred_at=timezone.now())
            app.send_task("bench.noop", kwargs={"event_id": str(event.pk)}, queue="bench",
                          retry=False)

    def emit_many(workspace):
        def run():
            for _ in range(n):
                with transaction.atomic():
                    event_emit(CRITICAL, workspace=workspace.public_id,
                               payload={"datasource_name": "x"})
        return run

    event_emit(CRITICAL, workspace=ws1.public_id)  # warm caches and the broker connection
    floor_time = best(floor) / n
    one = best(emit_many(ws1)) / n
    thousand = best(emit_many(ws1000)) / n
    app.control.purge()
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("bench")
    row("emit() in the caller, committed + published, type and workspace as strings",
        f"{ms(one)} (1 member), {ms(thousand)} (1,000 members)",
        f"{ms(floor_time)} (Event insert + publish)",
        f"x{one / floor_time:.2f} / x{thousand / floor_time:.2f}", "<= 1.3x, flat")
    Event.objects.all().delete()


def bench_routing():
    """Routing one critical event in-process: fixed part and per-recipient cost."""
    results = {}
    critical = EventType.objects.get(key=CRITICAL)
    for members in (1, 1000):
        workspace, users = make_workspace(f"route{members}", members)

        def route(workspace=workspace):
            with transaction.atomic():
                event = event_emit(CRITICAL, workspace=workspace,
                                   payload={"datasource_name": "x"})
                started = time.perf_counter()
                event_route(event_id=event.pk)
                elapsed = time.perf_counter() - started
                transaction.set_rollback(True)
            return elapsed

        def floor(users=users, workspace=workspace):
            # What routing writes per recipient of a critical event by default (in_app,
            # email; no webhook endpoint here): a notification and an email delivery.
            with transaction.atomic():
                event = Event.objects.create(
                    event_type=critical, workspace=workspace, priority="critical",
                    payload={"datasource_name": "x"}, occurred_at=timezone.now())
                Notification.objects.bulk_create(
                    [Notification(user=u, event=event, workspace=workspace,
                                  event_type_key=CRITICAL, category="data_sources",
                                  priority="critical", title="Connection lost: x")
                     for u in users], batch_size=1000)
                Delivery.objects.bulk_create(
                    [Delivery(event=event, channel="email", user=u, target=u.email,
                              priority="critical", next_attempt_at=timezone.now())
                     for u in users], batch_size=1000)
                transaction.set_rollback(True)

        route()
        results[members] = (min(route() for _ in range(5)), best(floor, 5))
    (one, floor_one), (many, floor_many) = results[1], results[1000]
    per = (many - one) / 999
    floor_per = (floor_many - floor_one) / 999
    row("routing one critical event (in-process, as in the worker)",
        f"{ms(one)} at 1 recipient, +{per * 1e6:.1f} us per recipient",
        f"bulk insert of the same rows (a notification and an email delivery each, "
        f"bulk_create): +{floor_per * 1e6:.1f} us per recipient",
        f"per recipient x{per / floor_per:.2f}", "fixed < 5 ms; per recipient <= 1.5x")


def bench_attention_routing():
    """Routing one event to 1,000 members with 100 active silences (none matching) and every
    member holding 5 mutes (of other event types) and quiet hours, beside the same routing
    without them (issue 16: within 1.3x). Critical events skip users' own choices; a high
    event goes through them all (its emails are held)."""
    now = timezone.now()
    kinds = list(EventType.objects.exclude(key__in=[CRITICAL, "query.query_failed"])[:5])
    timings = {}
    for setup in ("plain", "attention"):
        workspace, users = make_workspace(f"attention-{setup}", 1000)
        if setup == "attention":
            Silence.objects.bulk_create(
                Silence(matchers={"payload": {"datasource_name": f"other-{n}"}}, starts_at=now,
                        ends_at=now + datetime.timedelta(days=1), comment="bench")
                for n in range(100))
            Mute.objects.bulk_create(Mute(user=u, event_type=k) for u in users for k in kinds)
            UserNotificationSettings.objects.bulk_create(
                UserNotificationSettings(user=u, timezone="UTC", quiet_start=datetime.time(0),
                                         quiet_end=datetime.time(23, 59)) for u in users)
        for key, payload in ((CRITICAL, {"datasource_name": "x"}),
                             ("query.query_failed", {"query_name": "x"})):
            def route(workspace=workspace, key=key, payload=payload):
                with transaction.atomic():
                    event = event_emit(key, workspace=workspace, payload=payload)
                    started = time.perf_counter()
                    event_route(event_id=event.pk)
                    elapsed = time.perf_counter() - started
                    transaction.set_rollback(True)
                return elapsed

            route()
            timings[(setup, key)] = min(route() for _ in range(5))
    for key, what in ((CRITICAL, "critical"), ("query.query_failed", "high")):
        plain, attention = timings[("plain", key)], timings[("attention", key)]
        row(f"routing one {what} event to 1,000 members with 100 active silences, 5 mutes "
            "and quiet hours each", ms(attention),
            f"the same routing without them: {ms(plain)}", f"x{attention / plain:.2f}",
            "<= 1.3x")


def bench_escalation_sweep(count=10_000):
    """Beat's escalation sweep over ``count`` open critical events whose escalation is due
    (one member with an address each: an escalation email each), beside one UPDATE of the
    same escalation rows, the least a sweep must write. Rolled back: nothing is enqueued."""
    from notifications.models import Escalation
    from notifications.services.incidents import escalations_send

    workspace, _ = make_workspace("escalation", 1)
    critical = EventType.objects.get(key=CRITICAL)
    now = timezone.now()
    events = Event.objects.bulk_create(
        [Event(event_type=critical, workspace=workspace, priority="critical",
               status=Event.Status.ROUTED, payload={"datasource_name": f"source-{n}"},
               occurred_at=now) for n in range(count)], batch_size=2000)
    Escalation.objects.bulk_create(
        [Escalation(event=event, channels=["email"], due_at=now) for event in events],
        batch_size=2000)

    def sweep():
        with transaction.atomic():
            started = time.perf_counter()
            sent = 0
            while swept := escalations_send(now=now):
                sent += swept
            elapsed = time.perf_counter() - started
            assert sent == count, sent
            transaction.set_rollback(True)
        return elapsed

    def floor(with_rows=False):
        """One UPDATE of the escalations; with the escalation emails' rows, what a sweep
        cannot avoid writing."""
        with transaction.atomic():
            started = time.perf_counter()
            Escalation.objects.filter(status="pending").update(status="sent", finished_at=now)
            if with_rows:
                Delivery.objects.bulk_create(
                    [Delivery(event=event, channel="email", purpose="escalation",
                              target="escalation-0@example.com", priority="critical",
                              next_attempt_at=now) for event in events], batch_size=1000)
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        return elapsed

    floor()
    swept = min(sweep() for _ in range(3))
    updated = min(floor() for _ in range(3))
    written = min(floor(with_rows=True) for _ in range(3))
    row(f"escalation sweep over {count:,} open critical events (claim, {count:,} escalation "
        "emails written, events marked, bells touched)", ms(swept),
        f"one UPDATE of the same escalation rows: {ms(updated)}; with the {count:,} "
        f"delivery rows bulk-inserted: {ms(written)}",
        f"x{swept / updated:.1f} / x{swept / written:.2f}",
        "reported; linear in due escalations")
    Escalation.objects.all().delete()
    Event.objects.filter(pk__in=[e.pk for e in events]).delete()


def bench_flush(events, members, log_dir):
    """A flush of events x members items, in a child process (for its peak RSS)."""
    workspace, users = make_workspace(f"flush{members}", members)
    medium = EventType.objects.get(key=MEDIUM)
    items = events * members

    def fill():
        with transaction.atomic():
            rows = Event.objects.bulk_create(
                Event(event_type=medium, workspace=workspace, priority="medium",
                      payload={"query_name": f"q{i}"}, occurred_at=timezone.now(),
                      status="routed") for i in range(events))
            for event in rows:
                Delivery.objects.bulk_create(
                    [Delivery(event=event, channel="in_app", user=u, priority="medium",
                              bucket="5m") for u in users], batch_size=5000)

    fill()
    started = time.perf_counter()
    Delivery.objects.filter(status="pending", bucket="5m").update(status="sending")
    floor_time = time.perf_counter() - started
    Delivery.objects.filter(status="sending").update(status="pending")

    env = Processes(log_dir).env
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "manage.py", "flush_digests", "--bucket", "5m"],
                             cwd=ROOT, env={**env, "LOG_LEVEL": "WARNING"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    output = child.stdout.read().decode()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(output)
    peak_mb = usage.ru_maxrss / 1024
    delivered = Delivery.objects.filter(status="delivered").count()
    assert delivered == items, (delivered, items, output)
    row(f"flush of {items:,} items ({events:,} events x {members} members), own process",
        f"{elapsed:.2f} s, {items / elapsed:,.0f} items/s, peak RSS {peak_mb:.0f} MB "
        "(process start included)",
        f"one UPDATE of all {items:,} rows: {floor_time:.2f} s",
        f"x{elapsed / floor_time:.2f}", "< 10 s at 100k items; memory flat in items")
    wipe_routing_output()
    return peak_mb


def bench_workers(processes, backlog):
    """Critical latency idle and under a backlog; the backlog's drain rate."""
    workspace, users = make_workspace("lane", 10)
    urgent = processes.worker("urgent", "urgent", 2)
    readable = Readable()

    # floor: a bare Celery hop (control ping to the urgent worker and back)
    hops = []
    for _ in range(30):
        started = time.perf_counter()
        app.control.ping(destination=["urgent@" + platform.node()], timeout=2)
        hops.append(time.perf_counter() - started)
    emit_critical(workspace, readable)  # warm
    idle = [emit_critical(workspace, readable) for _ in range(300)]  # enough for a p99
    row("critical emit -> in-app readable, idle urgent worker, 10 members, 300 emits",
        f"median {ms(statistics.median(idle))}, p99 {ms(pct(idle, 99))}",
        f"bare Celery hop (control ping round trip): median {ms(statistics.median(hops))}",
        f"x{statistics.median(idle) / statistics.median(hops):.2f}", "p99 < 25 ms")

    under_load, rate = _critical_during_backlog(processes, workspace, backlog, readable)
    _backlog_row(f"critical emit -> in-app readable while {backlog:,} medium events drain",
                 under_load, idle)

    medium = EventType.objects.get(key=MEDIUM)
    n = min(backlog, 1000)

    def floor():  # the same rows with bulk_create, in one process
        with transaction.atomic():
            rows = Event.objects.bulk_create(
                Event(event_type=medium, workspace=workspace, priority="medium",
                      occurred_at=timezone.now()) for _ in range(n))
            Delivery.objects.bulk_create(
                [Delivery(event=e, channel="in_app", user=u, priority="medium", bucket="5m")
                 for e in rows for u in users], batch_size=5000)
            transaction.set_rollback(True)

    floor_rate = n / best(floor)
    row("backlog drain, 10 members per event, one batched worker (concurrency 2), "
        "from its start to the last event routed",
        f"{rate:,.0f} events/s", f"bulk_create of the same rows: {floor_rate:,.0f} events/s",
        f"x{rate / floor_rate:.2f}", ">= 0.5x the floor")

    # The same with the Procfile's sender and webhook workers running, and a webhook
    # endpoint (every critical event reaches it) that takes 8 s to answer each request.
    with SlowReceiver(delay=8) as receiver:
        settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # loopback, for the bench only
        from channels_app.services.webhooks import webhook_endpoint_save

        endpoint = webhook_endpoint_save(values={"name": "slow", "url": receiver.url})
        sender = processes.worker("sender", "deliveries", 2)
        webhooks = processes.worker("webhooks", "webhooks", 2)
        try:
            slow, _ = _critical_during_backlog(processes, workspace, backlog, readable)
            requests_seen = receiver.requests
        finally:
            for process in (webhooks, sender):
                processes.stop(process)
            endpoint.delete()
    _backlog_row(f"critical emit -> in-app readable while {backlog:,} medium events drain, "
                 f"with a webhook endpoint answering in 8 s ({requests_seen} requests held) "
                 "and the sender and webhook workers running", slow, idle)
    processes.stop(urgent)
    readable.close()
    wipe_routing_output()


def _critical_during_backlog(processes, workspace, backlog, readable):
    """Queue ``backlog`` medium events with no batched worker, start one, and time critical
    emits until the backlog is routed; returns (latencies, drain rate in events/s)."""
    with transaction.atomic():
        for i in range(backlog):
            event_emit(MEDIUM, workspace=workspace.public_id, payload={"query_name": f"q{i}"})
    pending = Event.objects.filter(status="pending", priority="medium")
    batched = processes.worker("batched", "events,digests", 2)
    ready = timezone.now()  # within the 0.1 s poll of the worker's "ready."
    samples = []
    try:
        while pending.exists():
            samples.append(emit_critical(workspace, readable))
            time.sleep(0.05)
    finally:
        processes.stop(batched)
    # From the worker's start to the last event routed: events routed in one batch share
    # a routed_at, so the spread of routed_at would leave the first batch out.
    routed = Event.objects.filter(priority="medium").values_list("routed_at", flat=True)
    span = (max(routed) - ready).total_seconds()
    Event.objects.filter(priority="medium").delete()
    return samples, backlog / span


def _backlog_row(what, samples, idle):
    row(what,
        f"median {ms(statistics.median(samples))}, p99 {ms(pct(samples, 99))} "
        f"({len(samples)} samples)" if samples else "backlog drained before a sample",
        "idle figure above",
        f"x{statistics.median(samples) / statistics.median(idle):.2f}" if samples else "-",
        "p99 < 100 ms")


class SlowReceiver:
    """A webhook receiver on loopback that answers 200 after ``delay`` seconds."""

    def __init__(self, delay):
        import http.server
        import threading

        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests += 1
                receiver.stopping.wait(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.requests = 0
        self.stopping = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def bench_read_path(processes, total_rows, mine):
    """GET list and unread-count over HTTP (gunicorn, token auth), beside their SQL."""
    import http.client

    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create(username="reader")
    other = get_user_model().objects.create(username="everyone-else")
    token = Token.objects.create(user=user).key
    table = Notification._meta.db_table
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, kind, event_type_key, category, priority, title, "
            "items, repeat_count, created_at, updated_at, read_at) "
            "SELECT CASE WHEN g %% %s = 0 THEN %s ELSE %s END, 'event', 'query.query_failed', "
            "'queries', 'medium', 'Query failed: q' || g, '[]'::jsonb, 0, now(), now(), "
            "CASE WHEN g %% 5 = 0 THEN NULL ELSE now() END "
            "FROM generate_series(1, %s) AS g",
            [total_rows // mine, user.pk, other.pk, total_rows])
        cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  (populated {total_rows:,} notifications in {time.perf_counter() - started:.0f} s)",
          flush=True)
    port = _free_port()
    processes.start("gunicorn", [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind",
                                 f"127.0.0.1:{port}", "--workers", "1"], "Booting worker")

    def get(path):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Token {token}"})
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        conn.close()
        assert response.status == 200, body[:300]
        return elapsed

    from notifications.selectors.bell import notification_list, notification_unread_count

    def sql_list():
        list(notification_list(user=user)[:51])

    for path, sql, name in (("/api/notifications/", sql_list, "GET /api/notifications/ (50)"),
                            ("/api/notifications/unread-count/",
                             lambda: notification_unread_count(user=user),
                             "GET /api/notifications/unread-count/")):
        for _ in range(20):
            get(path)
        samples = [get(path) for _ in range(300)]
        sql_samples = []
        for _ in range(100):
            started = time.perf_counter()
            sql()
            sql_samples.append(time.perf_counter() - started)
        row(f"{name} over HTTP (gunicorn, token auth), user with {mine:,} of "
            f"{total_rows:,} rows",
            f"median {ms(statistics.median(samples))}, p99 {ms(pct(samples, 99))}",
            f"its SQL through the ORM: median {ms(statistics.median(sql_samples))}",
            f"x{statistics.median(samples) / statistics.median(sql_samples):.2f}",
            "p99 < 10 ms (list), < 8 ms (count)")


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- metrics: their cost on the hot paths, and a scrape --------------------------------------

class _NoMetric:
    """Stands for a metric while the metrics are off: every call does nothing."""

    def labels(self, *args, **kwargs):
        return self

    def inc(self, *args, **kwargs):
        pass

    dec = observe = set = inc


@contextlib.contextmanager
def metrics_off():
    """Every metric of ``core.metrics`` replaced by a no-op, and ``observe_many`` (which
    writes a histogram's own buckets) by one (call sites read them at call time), so the
    same code runs with and without counting."""
    from prometheus_client.metrics import MetricWrapperBase

    from core import metrics

    saved = {name: value for name, value in vars(metrics).items()
             if isinstance(value, MetricWrapperBase)}
    stand_ins = {**dict.fromkeys(saved, _NoMetric()),
                 "observe_many": lambda histogram, amount, count: None}
    saved["observe_many"] = metrics.observe_many
    try:
        for name, stand_in in stand_ins.items():
            setattr(metrics, name, stand_in)
        yield
    finally:
        for name, value in saved.items():
            setattr(metrics, name, value)


def side_by_side(fn, rounds=5):
    """(best with metrics on, best with metrics off), the two measured alternately."""
    on, off = [], []
    for _ in range(rounds):
        on.append(best(fn, 1))
        with metrics_off():
            off.append(best(fn, 1))
    return min(on), min(off)


POPULATE = """
import django, sys
django.setup()
from core import metrics
from config import control_plane
from events.models import EventType
from events.catalog import Priority
channels = ["in_app", "email", "webhook"]
kinds = ["unreachable", "timeout", "tls_failed", "auth_failed", "rejected", "server_error",
         "rate_limited", "unexpected"]
for key in EventType.objects.values_list("key", flat=True):
    for priority in Priority.VALUES:
        metrics.EVENTS_EMITTED.labels(key, priority).inc()
for channel in channels:
    metrics.NOTIFICATIONS.labels(channel).inc()
    for outcome in ("delivered", "failed", "cancelled"):
        metrics.DELIVERIES.labels(channel, outcome).inc()
    for outcome in ("delivered", "transient", "permanent"):
        metrics.DELIVERY_ATTEMPTS.labels(channel, outcome).inc()
    for kind in kinds:
        metrics.DELIVERY_ERRORS.labels(channel, kind).inc()
    for seconds in metrics.LATENCY_BUCKETS:
        metrics.DELIVERY_LATENCY.labels(channel).observe(seconds)
        metrics.DELIVERY_ATTEMPT_SECONDS.labels(channel).observe(seconds)
metrics.OUTBOX_PUBLISH_FAILURES.inc()
send_queues = {"deliveries", "digests", "webhooks"}  # a send runs on its channel's queue
for task in control_plane.TASKS:
    queues = send_queues if task.name == control_plane.DELIVERY_SEND else {task.queue}
    for queue in queues:
        for state in ("success", "failure", "retry"):
            metrics.TASKS.labels(task.name, queue, state).inc()
    for seconds in metrics.DURATION_BUCKETS:
        metrics.TASK_DURATION.labels(task.name).observe(seconds)
    metrics.TASKS_IN_PROGRESS.labels(task.name).inc()
"""


def bench_metrics(processes, log_dir):
    """emit and routing with the metrics on and off, side by side; a scrape of a host whose
    processes populated every metric, over HTTP."""
    ws1, _ = make_workspace("metrics1", 1)
    ws1000, _ = make_workspace("metrics1000", 1000)
    n = 300

    def emit_many():
        for _ in range(n):
            with transaction.atomic():
                event_emit(CRITICAL, workspace=ws1.public_id, payload={"datasource_name": "x"})

    event_emit(CRITICAL, workspace=ws1.public_id)  # warm
    on, off = side_by_side(emit_many)
    app.control.purge()
    row("emit() as in the emit row, metrics on vs off (alternately, same run)",
        f"{ms(on / n)} with metrics", f"{ms(off / n)} without", f"x{on / off:.2f}",
        "<= 1.1x")

    def route_committed():
        with transaction.atomic():
            event = event_emit(CRITICAL, workspace=ws1000, payload={"datasource_name": "x"})
        started = time.perf_counter()
        event_route(event_id=event.pk)  # commits: the counts after commit are in the time
        elapsed = time.perf_counter() - started
        Event.objects.filter(pk=event.pk).delete()
        return elapsed

    route_committed()
    on, off = [], []
    for _ in range(6):  # alternately, so the machine's load weighs on both alike
        on.append(route_committed())
        with metrics_off():
            off.append(route_committed())
    on, off = min(on), min(off)
    app.control.purge()
    row("routing one critical event to 1,000 members, committed, metrics on vs off",
        f"{ms(on)} with metrics (1,000 latency observations)", f"{ms(off)} without",
        f"x{on / off:.2f}", "<= 1.1x")
    wipe_routing_output()

    import tempfile

    with tempfile.TemporaryDirectory() as metrics_dir:
        env = {**processes.env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
        for _ in range(8):  # a host's processes: web workers, pool processes, beat
            subprocess.run([sys.executable, "-c", POPULATE], cwd=ROOT, env=env, check=True)
        files = len(os.listdir(metrics_dir))
        port = _free_port()
        saved_env, processes.env = processes.env, env
        try:
            web = processes.start("gunicorn-metrics", [
                sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py",
                "--bind", f"127.0.0.1:{port}", "--workers", "1"], "Booting worker")
        finally:
            processes.env = saved_env
        import http.client

        def scrape():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            conn.close()
            assert response.status == 200, body[:300]
            return elapsed, body

        _, body = scrape()
        samples = [scrape()[0] for _ in range(100)]
        processes.stop(web)
    lines = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    row(f"GET /metrics over HTTP, every metric populated by 8 processes ({files} files, "
        f"{lines:,} samples), the backlog gauges read from PostgreSQL and Redis",
        f"median {ms(statistics.median(samples))}, p99 {ms(pct(samples, 99))}",
        "-", "-", "< 50 ms")


# --- the run ----------------------------------------------------------------------------------

def machine():
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql"
                       else "SELECT 'SQLite ' || sqlite_version()")
        database = cursor.fetchone()[0].split(" on ")[0]
    broker = settings.CELERY_BROKER_URL.split("://")[0]
    if broker.startswith("redis"):
        import redis

        broker = f"Redis {redis.Redis.from_url(settings.CELERY_BROKER_URL).info()['redis_version']}"
    return {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "database": database, "broker": broker,
            "python": platform.python_version(), "django": django.get_version(),
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def write_results(info, args):
    lines = [
        "# Benchmark results", "",
        f"`bin/bench{' --big' if args.big else ''}` on {info['date']}: {info['cores']} cores "
        f"({info['cpu']}), {info['database']}, {info['broker']}, Python {info['python']}, "
        f"Django {info['django']}; load average at start {info['load']} (a shared machine: "
        "compare ratios, not absolute figures).", "",
        "| what | measured | floor in the same run | ratio | target |", "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(cells)} |" for cells in ROWS]
    results_path(args).write_text("\n".join(lines) + "\n")


def results_path(args) -> Path:
    """``bench/RESULTS.md``, or ``bench/RESULTS-big.md`` for the issue's sizes."""
    return ROOT / "bench" / ("RESULTS-big.md" if args.big else "RESULTS.md")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big", action="store_true",
                        help="issue sizes: 10M notifications, 10,000-event backlog, 100k-item "
                             "flush (takes a while)")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default all: {', '.join(PARTS)}); "
                             "RESULTS.md is written only for a whole run")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(only - set(PARTS)))}")
    sizes = ({"rows": 10_000_000, "backlog": 10_000, "flush_events": 1000}
             if args.big else {"rows": 200_000, "backlog": 2_000, "flush_events": 200})
    setup_test_environment()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout`, kill: still clean up
    # A database of its own, apart from the test suite's test_<name>: both can run at once.
    connection.settings_dict["TEST"]["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    log_dir = Path(settings.VAR_DIR) / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = Processes(log_dir)
    try:
        info = machine()
        print(f"{info['date']}: {info['cores']} cores, {info['database']}, {info['broker']}\n",
              flush=True)
        if "emit" in only:
            bench_emit()
        if "routing" in only:
            bench_routing()
            bench_attention_routing()
        if "escalation" in only:
            bench_escalation_sweep()
        services = (connection.vendor == "postgresql"
                    and settings.CELERY_BROKER_URL.startswith("redis"))
        if services:
            if "flush" in only:
                bench_flush(sizes["flush_events"], 100, log_dir)
            if "workers" in only:
                bench_workers(processes, sizes["backlog"])
            if "read" in only:
                bench_read_path(processes, sizes["rows"], 1000)
            if "metrics" in only:
                bench_metrics(processes, log_dir)
            if "sends" in only:
                sys.modules.setdefault("run", sys.modules[__name__])  # one module, not two
                from sends import bench_sends  # bench/sends.py, issue 21's rows

                bench_sends(log_dir)
        else:
            print("(worker, flush and HTTP rows need PostgreSQL and Redis)")
        if only == set(PARTS):
            write_results(info, args)
            print(f"\nwritten to {results_path(args).relative_to(ROOT)}")
    finally:
        processes.stop_all()
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
