"""The delivery pipeline on real worker processes, real SMTP servers and committed data:
emails sent after routing, digests after a flush, retries scheduled on the broker, and a
worker killed in the middle of a send."""

import asyncio
import os
import signal
import subprocess
import sys
import threading

from aiosmtpd.controller import Controller
from celery import current_app
from django.utils import timezone

from channels_app.emails import make_message_id
from channels_app.models import EmailSettings
from channels_app.services.email import email_settings_update
from config import control_plane
from events import emit
from events.models import Event, EventType
from notifications.deliveries.sweep import delivery_sweep
from notifications.models import Delivery, DeliveryAttempt, RoutingRule
from notifications.services.digests import digest_flush
from tests.channels_app.smtp_servers import HOST, RecordingHandler, _LoopbackController
from tests.support import ROOT, api_client_for, stop_tree, subprocess_env, wait_until

from .conftest import SENDER

CRITICAL = "data_source.connection_lost"
MEDIUM = "query.long_running_query"


def email_rule(event_type):
    RoutingRule.objects.update_or_create(event_type=EventType.objects.get(key=event_type),
                                         defaults={"channels": ["email"]})


def delivered(**filters):
    return Delivery.objects.filter(status="delivered", **filters).count()


def test_a_critical_event_emails_each_member_once(live_db, celery_worker, make_workspace,
                                                   smtp_server, email_on):
    server = smtp_server()
    email_on(server)
    email_rule(CRITICAL)
    workspace = make_workspace("Analytics EU", members=2)

    event = emit(CRITICAL, workspace=workspace,
                 payload={"datasource_name": "Production Snowflake", "host": "acme.example"})

    wait_until(lambda: len(server.received) >= 2, timeout=60, message="two emails")
    wait_until(lambda: delivered(event=event) == 2, timeout=30, message="two delivered rows")
    by_address = {r.rcpt_tos[0]: r for r in server.received}
    assert len(server.received) == 2
    assert set(by_address) == {member.email for member in workspace.people}
    for member in workspace.people:
        received = by_address[member.email]
        message = received.message
        row = Delivery.objects.get(event=event, target=member.email)
        assert message["Subject"] == "[Critical] Connection lost: Production Snowflake"
        assert message["From"] == f"Datafi Alerts <{SENDER}>"
        assert message["To"] == member.email
        assert message["Message-ID"] == make_message_id(row.pk, SENDER)
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Date"].datetime.tzinfo is not None
        text, html = received.text(), received.html()
        for body in (text, html):
            assert "Connection lost: Production Snowflake" in body
            assert "acme.example" in body and "Analytics EU" in body
        assert (row.attempts, row.last_status_code) == (1, 250)
        assert list(row.attempt_log.values_list("number", "outcome")) == [(1, "delivered")]


def test_451_twice_then_accepted_on_the_worker(live_db, celery_worker, make_workspace,
                                               smtp_server, email_on):
    server = smtp_server(replies=["451 4.3.0 Try again later"] * 2)
    email_on(server)
    email_rule(CRITICAL)
    workspace = make_workspace(members=1)

    event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"})

    wait_until(lambda: delivered(event=event) == 1, timeout=90, message="the delivery")
    row = Delivery.objects.get(event=event)
    attempts = list(DeliveryAttempt.objects.filter(delivery=row).order_by("number"))
    assert [(a.outcome, a.status_code) for a in attempts] == [
        ("transient", 451), ("transient", 451), ("delivered", 250)]
    assert len(server.handler.accepted) == 1 and row.attempts == 3
    # The worker runs with DATAFI_RETRY_BASE_SECONDS=1: waits of 1 s and 2 s, +-20%.
    waits = [(later.started_at - earlier.started_at).total_seconds() - earlier.duration_ms / 1000
             for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert waits[0] >= 0.8 and waits[1] >= 1.6
    assert waits[1] > waits[0]


def test_five_medium_events_make_one_digest_email_per_member(live_db, celery_worker,
                                                             make_workspace, smtp_server,
                                                             email_on):
    server = smtp_server()
    email_on(server)
    email_rule(MEDIUM)
    workspace = make_workspace(members=2)
    events = [emit(MEDIUM, workspace=workspace, payload={"query_name": f"nightly_{n}"})
              for n in range(5)]
    wait_until(lambda: Delivery.objects.filter(bucket="5m", status="pending").count() == 10,
               timeout=60, message="ten email items waiting in the 5m bucket")

    assert server.received == []  # nothing before the flush
    first = digest_flush(bucket="5m")

    assert (first.claimed_items, first.digests_enqueued) == (10, 2)
    wait_until(lambda: delivered(kind="digest") == 2, timeout=60, message="two digests")
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(
        m.email for m in workspace.people)
    for received in server.received:
        assert received.message["Subject"] == "Datafi digest: 5 notifications (medium)"
        text = received.text()
        assert all(f"nightly_{n}" in text for n in range(5))
        assert all(f"nightly_{n}" in received.html() for n in range(5))
    assert delivered(event__in=events) == 10

    second = digest_flush(bucket="5m")
    assert (second.claimed_items, second.digests_enqueued) == (0, 0)
    assert Delivery.objects.filter(kind="digest").count() == 2
    assert len(server.received) == 2


def test_email_off_then_on_sends_what_waited(live_db, celery_worker, make_workspace,
                                              smtp_server, email_on):
    server = smtp_server()
    email_on(server, enabled=False)
    email_rule(CRITICAL)
    workspace = make_workspace(members=1)

    event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"})

    # The worker tried: the delivery waits, unattempted, with no due time.
    wait_until(lambda: Delivery.objects.filter(event=event, next_attempt_at__isnull=True,
                                               status="pending").exists(),
               timeout=60, message="the send to find email off")
    row = Delivery.objects.get(event=event)
    assert row.attempts == 0 and server.received == []

    email_settings_update(values={"enabled": True})

    wait_until(lambda: delivered(event=event) == 1, timeout=60, message="the delivery")
    assert len(server.received) == 1


def test_enabled_but_incomplete_waits_on_the_worker_until_completed_over_rest(
        live_db, celery_worker, make_workspace, make_user, smtp_server, email_on):
    server = smtp_server()
    email_on(server)
    EmailSettings.objects.filter(pk=EmailSettings.SINGLETON_ID).update(host="")  # by hand
    email_rule(CRITICAL)
    workspace = make_workspace(members=1)

    event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"})

    wait_until(lambda: Delivery.objects.filter(event=event, next_attempt_at__isnull=True,
                                               status="pending").exists(),
               timeout=60, message="the send to find email incomplete")
    row = Delivery.objects.get(event=event)
    assert row.attempts == 0 and row.last_error == "" and server.received == []

    response = api_client_for(make_user("ops", superuser=True)).patch(
        "/api/email-settings/", {"host": HOST}, format="json")

    assert response.status_code == 200, response.json()
    wait_until(lambda: delivered(event=event) == 1, timeout=60, message="the delivery")
    assert len(server.received) == 1
    assert list(DeliveryAttempt.objects.filter(delivery=row).values_list("outcome", flat=True)
                ) == ["delivered"]


# --- a worker killed mid-send ---------------------------------------------------------------

class HoldingHandler(RecordingHandler):
    """Records each message, then holds its reply to DATA until ``release`` is set (the
    ``at``-th message only)."""

    def __init__(self, at: int = 1):
        super().__init__()
        self.at = at
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.at:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        return reply


class HoldingServer:
    def __init__(self):
        self.handler = HoldingHandler()
        self.controller: Controller = _LoopbackController(self.handler, hostname=HOST, port=0,
                                                          ready_timeout=60)
        self.controller.start()
        self.port = self.controller.port
        self.received = self.handler.received

    def stop(self):
        self.handler.release.set()
        self.controller.stop()


def start_worker(queues: str, log_path, *, concurrency: int = 1):
    """A worker of its own on ``queues`` (solo pool, or prefork with ``concurrency``)."""
    log = open(log_path, "w")  # noqa: SIM115 (closed by stop_worker)
    pool = ["--pool", "solo"] if concurrency == 1 else ["--concurrency", str(concurrency)]
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", *pool,
         "--queues", queues, "--loglevel", "INFO", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--hostname", f"kill-test-{os.getpid()}-{id(log)}@%h"],
        cwd=ROOT, env=subprocess_env(DATAFI_RETRY_BASE_SECONDS="1"), stdout=log,
        stderr=subprocess.STDOUT)
    process.log = log
    wait_until(lambda: "ready." in log_path.read_text() or process.poll() is not None,
               timeout=120, message="a celery worker to start")
    assert process.poll() is None, log_path.read_text()[-3000:]
    return process


def stop_worker(process):
    """Stop the worker and its pool processes, however it is doing."""
    stop_tree(process, grace=30)
    process.log.close()


def test_a_worker_killed_while_the_server_holds_data_is_finished_by_the_next(
        live_db, celery_worker, make_workspace, email_on, settings, tmp_path):
    queue = f"kill-test-{os.getpid()}"
    server = HoldingServer()
    workers = []
    try:
        email_on(server)
        workspace = make_workspace(members=1)
        member = workspace.people[0]
        # Routed to in-app only; the email delivery is made here and sent by a worker of
        # this test's own queue (the session's worker must not take it).
        RoutingRule.objects.create(event_type=EventType.objects.get(key=CRITICAL),
                                   channels=["in_app"])
        event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"})
        wait_until(lambda: Event.objects.get(pk=event.pk).status == "routed", timeout=60,
                   message="routing")
        row = Delivery.objects.create(event=event, channel="email", user=member,
                                      target=member.email, priority="critical",
                                      next_attempt_at=timezone.now())
        workers.append(start_worker(queue, tmp_path / "first.log"))
        current_app.send_task(control_plane.DELIVERY_SEND, kwargs={"delivery_id": str(row.pk)},
                              queue=queue)

        wait_until(lambda: len(server.received) == 1, timeout=60, message="DATA to arrive")
        # The claim committed before the network call: another connection sees it.
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("sending", 1)
        assert DeliveryAttempt.objects.get(delivery=row).outcome == ""

        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=30)
        server.handler.release.set()
        workers.append(start_worker(f"{queue},deliveries", tmp_path / "second.log"))
        settings.DATAFI_SENDING_TIMEOUT_SECONDS = 1
        wait_until(lambda: delivery_sweep().interrupted == 1, timeout=30,
                   message="the sweep to find the interrupted send")

        wait_until(lambda: delivered(pk=row.pk) == 1, timeout=60, message="the delivery")
        row.refresh_from_db()
        assert row.attempts == 2
        assert list(row.attempt_log.values_list("number", "outcome")) == [
            (1, "transient"), (2, "delivered")]
        assert "worker stopped" in row.attempt_log.get(number=1).error
        ids = [r.message["Message-ID"] for r in server.received]
        assert ids == [make_message_id(row.pk, SENDER)] * 2
    finally:
        for process in workers:
            stop_worker(process)
        server.stop()
