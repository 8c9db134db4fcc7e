"""emit() through a real Celery worker process, read back over the REST API."""

import json
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from events import emit
from events.models import Event
from events.services.outbox import outbox_sweep
from notifications.models import Notification
from tests.support import ROOT, subprocess_env, wait_until

pytestmark = [pytest.mark.worker]


def notifications_over_rest(user):
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/notifications/")
    assert response.status_code == 200
    return response.json()["results"]


def test_critical_event_reaches_three_members_over_rest(live_db, celery_worker, make_workspace):
    workspace = make_workspace(members=3)

    event = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "Production Snowflake"})

    for member in workspace.people:
        results = wait_until(lambda m=member: notifications_over_rest(m), timeout=120,
                             message=f"{member}'s notification")
        assert [r["title"] for r in results] == ["Connection lost: Production Snowflake"]
        assert results[0]["priority"] == "critical"
        assert results[0]["event_id"] == str(event.pk)
        assert results[0]["workspace_id"] == workspace.public_id
    assert Notification.objects.count() == 3


def test_rolled_back_emit_sends_nothing(live_db, celery_worker, make_workspace):
    workspace = make_workspace(members=2)

    with pytest.raises(RuntimeError), transaction.atomic():
        emit("policy.violation_detected", workspace=workspace, payload={"policy_name": "PII"})
        raise RuntimeError("the caller's work failed")
    # A marker emitted afterwards goes through the same queue: once it is delivered, the
    # worker has drained everything before it.
    marker = emit("query.query_failed", workspace=workspace, payload={"query_name": "marker"})
    wait_until(lambda: Notification.objects.filter(event=marker).count() == 2, timeout=120,
               message="the marker event's notifications")

    assert list(Event.objects.values_list("pk", flat=True)) == [marker.pk]
    assert not Notification.objects.exclude(event=marker).exists()


def run_emit_command(broker_url: str, workspace, event_type="data_source.connection_lost"
                     ) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    # Each its own data source: a repeat of the same one would be grouped into the first.
    payload = json.dumps({"datasource_name": f"Warehouse {uuid.uuid4().hex[:6]}"})
    completed = subprocess.run(
        [sys.executable, "manage.py", "emit", event_type,
         "--workspace", workspace.public_id, "--payload", payload],
        cwd=ROOT, env=subprocess_env(CELERY_BROKER_URL=broker_url),
        capture_output=True, text=True, timeout=120,
    )
    return completed, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_broker():
    """A TCP server on loopback that accepts connections and never answers: a hung broker."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_broker_outage_never_reaches_the_caller_and_the_sweep_delivers_later(
    live_db, celery_worker, make_workspace, silent_broker
):
    workspace = make_workspace(members=2)
    # The same command refused before it publishes: what starting Django costs right now
    # (several seconds on a busy machine), so the bound below measures only the broker.
    _, startup_seconds = run_emit_command(silent_broker, workspace, event_type="no.such_type")

    refused, refused_seconds = run_emit_command(f"redis://127.0.0.1:{free_port()}/0", workspace)
    hung, hung_seconds = run_emit_command(silent_broker, workspace)

    for completed in (refused, hung):
        assert completed.returncode == 0, completed.stderr
        assert "Emitted data_source.connection_lost" in completed.stdout
    # Bounded by the broker connect/socket timeouts in settings (3 s), not by the default
    # retries (which wait far longer), with room for a busy machine.
    over = (refused_seconds - startup_seconds, hung_seconds - startup_seconds)
    assert over[0] < 10 and over[1] < 15, (startup_seconds, refused_seconds, hung_seconds)
    assert Event.objects.filter(status=Event.Status.PENDING).count() == 2
    assert not Notification.objects.exists()

    # The broker is back: the periodic outbox sweep enqueues them and the worker delivers.
    assert outbox_sweep() == 2
    wait_until(lambda: Notification.objects.count() == 4, timeout=120,
               message="4 notifications after sweep")
    assert not Event.objects.filter(status=Event.Status.PENDING).exists()


EMIT_MANY = """
import time
import uuid
import django
django.setup()
from django.db import transaction
from events import emit
started = time.monotonic()
with transaction.atomic():
    for n in range(20):
        emit("query.query_failed", workspace="{workspace}", payload={{"query_name": str(n)}})
print(f"elapsed={{time.monotonic() - started:.1f}}")
"""


def test_a_transaction_emitting_many_events_waits_for_a_hung_broker_once(
    live_db, celery_worker, make_workspace, silent_broker
):
    workspace = make_workspace(members=2)

    completed = subprocess.run(
        [sys.executable, "-c", EMIT_MANY.format(workspace=workspace.public_id)],
        cwd=ROOT, env=subprocess_env(CELERY_BROKER_URL=silent_broker,
                                     DJANGO_SETTINGS_MODULE="config.settings"),
        capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    elapsed = float(completed.stdout.split("elapsed=")[1])
    # One socket timeout (3 s), then the process leaves the broker alone: not 20 of them.
    assert elapsed < 12, elapsed
    assert Event.objects.filter(status=Event.Status.PENDING).count() == 20
    assert outbox_sweep() == 20
    wait_until(lambda: Notification.objects.count() == 40, timeout=120,
               message="40 notifications")
