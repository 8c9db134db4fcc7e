"""Batched sends on real worker processes: a 1,000-recipient send over a few SMTP
connections per process, and a worker killed in the middle of a batch."""

import asyncio
import collections
import signal
import threading
import uuid

import pytest
from celery import current_app
from django.db import connection
from django.utils import timezone

from channels_app.emails import make_message_id
from config import control_plane
from events import emit
from events.models import Event, EventType
from notifications.deliveries import send
from notifications.deliveries.sweep import delivery_sweep
from notifications.models import Delivery, RoutingRule
from notifications.routing.route import event_route
from tests.channels_app.smtp_servers import HOST, RecordingHandler, _LoopbackController
from tests.support import wait_until

from .conftest import SENDER
from .test_delivery_worker import HoldingHandler, start_worker, stop_worker

CRITICAL = "data_source.connection_lost"

pytestmark = pytest.mark.worker


def routed_event(make_workspace):
    """A committed critical event, routed to the bell only: the tests make its sends."""
    RoutingRule.objects.update_or_create(event_type=EventType.objects.get(key=CRITICAL),
                                         defaults={"channels": ["in_app"]})
    event = emit(CRITICAL, workspace=make_workspace(members=1),
                 payload={"datasource_name": "Snowflake"})
    event_route(event_id=event.pk)  # here, or by the session's worker first
    wait_until(lambda: Event.objects.get(pk=event.pk).status == "routed", timeout=60,
               message="routing")
    return event


def email_sends(event, count):
    return Delivery.objects.bulk_create(
        Delivery(event=event, channel="email", target=f"person{n}@example.com",
                 priority="critical", next_attempt_at=timezone.now()) for n in range(count))


def test_a_thousand_emails_take_a_few_connections_per_worker_process(
        live_db, postgres, make_workspace, smtp_server, email_on, tmp_path):
    server = smtp_server()
    email_on(server)
    event = routed_event(make_workspace)
    rows = email_sends(event, 1000)
    queue = f"batch-test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue, tmp_path / "worker.log", concurrency=2)
    try:
        for _ in range(2):  # two lanes, as routing publishes them
            current_app.send_task(
                control_plane.EVENT_DELIVERIES_SEND, queue=queue,
                kwargs={"event_id": str(event.pk), "channel": "email", "queue": queue})

        wait_until(lambda: len(server.received) >= 1000, timeout=240,
                   message="1,000 emails to arrive")
        wait_until(lambda: Delivery.objects.filter(event=event, channel="email",
                                                   status="delivered").count() == 1000,
                   timeout=120, message="1,000 delivered rows")
    finally:
        stop_worker(worker)
    assert len(server.received) == 1000
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(r.target for r in rows)
    # Two pool processes: each keeps one connection (a few at most, with the message cap).
    assert 1 <= server.connections <= 4, server.connections


def test_a_worker_killed_mid_batch_leaves_each_send_delivered_once(
        live_db, celery_worker, make_workspace, email_on, settings, tmp_path):
    handler = HoldingHandler(at=3)
    server = _LoopbackController(handler, hostname=HOST, port=0, ready_timeout=60)
    server.start()
    workers = []
    try:
        email_on(server)
        event = routed_event(make_workspace)
        rows = email_sends(event, 5)
        queue = f"batch-test-{uuid.uuid4().hex[:8]}"
        workers.append(start_worker(queue, tmp_path / "first.log"))
        current_app.send_task(control_plane.DELIVERIES_SEND, queue=queue,
                              kwargs={"delivery_ids": [str(r.pk) for r in rows]})

        wait_until(lambda: len(handler.received) == 3, timeout=60, message="the third DATA")
        states = [(r.status, r.attempts) for r in Delivery.objects.filter(
            pk__in=[r.pk for r in rows]).order_by("target")]
        assert states == [("delivered", 1)] * 2 + [("sending", 1)] * 3  # claimed together

        doomed = workers.pop()
        doomed.send_signal(signal.SIGKILL)  # no chance to record anything
        stop_worker(doomed)
        handler.release.set()
        workers.append(start_worker(f"{queue},deliveries", tmp_path / "second.log"))
        settings.DATAFI_SENDING_TIMEOUT_SECONDS = 1
        picked_up = []
        wait_until(lambda: picked_up.append(delivery_sweep().interrupted) or sum(picked_up) == 3,
                   timeout=60, message="the sweep to find the three interrupted sends")

        wait_until(lambda: Delivery.objects.filter(pk__in=[r.pk for r in rows],
                                                   status="delivered").count() == 5,
                   timeout=90, message="every send delivered")
    finally:
        for process in workers:
            stop_worker(process)
        handler.release.set()
        server.stop()
    ids = collections.Counter(r.message["Message-ID"] for r in handler.received)
    by_target = {r.target: r for r in rows}
    expected = {make_message_id(by_target[f"person{n}@example.com"].pk, SENDER): count
                for n, count in enumerate([1, 1, 2, 1, 1])}
    assert ids == expected  # only the one on the wire twice, with the same Message-ID
    for n, log in enumerate([[(1, "delivered")]] * 2 + [[(1, "transient"), (2, "delivered")]] * 3):
        row = Delivery.objects.get(pk=by_target[f"person{n}@example.com"].pk)
        assert list(row.attempt_log.values_list("number", "outcome")) == log, n


class SlowData(RecordingHandler):
    """Records each message, answering its DATA after ``seconds``: a slow SMTP server."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.seconds)
        return await super().handle_DATA(server, session, envelope)


def test_a_batch_longer_than_the_sending_timeout_keeps_its_claim(
        live_db, make_workspace, email_on, settings, monkeypatch):
    """A slow server makes a batch outlast DATAFI_SENDING_TIMEOUT_SECONDS; the batch renews
    its claim as it goes, so the sweep running meanwhile takes nothing back and each message
    is sent once, by its one attempt."""
    settings.DATAFI_SENDING_TIMEOUT_SECONDS = 1
    monkeypatch.setattr(send, "RENEW_SECONDS", 0.2)
    handler = SlowData(0.3)
    server = _LoopbackController(handler, hostname=HOST, port=0, ready_timeout=60)
    server.start()
    try:
        email_on(server)
        rows = email_sends(routed_event(make_workspace), 8)  # 2.4 s of DATA at least
        outcomes = []

        def send_batch():
            try:
                outcomes.extend(send.deliveries_send(delivery_ids=[r.pk for r in rows]))
            finally:
                connection.close()  # this thread's own

        batch = threading.Thread(target=send_batch)
        batch.start()
        swept = []
        while batch.is_alive():  # the sweep, as beat runs it, all along
            swept.append(delivery_sweep().interrupted)
            batch.join(timeout=0.05)
    finally:
        server.stop()
    assert outcomes == ["delivered"] * 8
    assert sum(swept) == 0
    assert sorted(r.rcpt_tos[0] for r in handler.received) == sorted(r.target for r in rows)
    for row in rows:
        assert list(Delivery.objects.get(pk=row.pk).attempt_log.values_list(
            "number", "outcome")) == [(1, "delivered")]
