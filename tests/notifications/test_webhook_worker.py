"""Webhooks on real worker processes, split as the Procfile runs them: one worker for the
``webhooks`` queue, one for ``events``, ``deliveries`` and ``digests``. A receiver that
takes 8 s per answer holds up only the webhook worker."""

import os
import subprocess
import sys

import pytest
from celery import current_app

from channels_app.services.webhooks import webhook_endpoint_save
from events import emit
from notifications.models import Delivery, Notification
from tests.channels_app.webhook_servers import Reply
from tests.support import ROOT, stop_tree, subprocess_env, wait_until

OTHER_QUEUES = ("urgent", "events", "deliveries", "digests", "bulk")


@pytest.fixture
def procfile_workers(live_db, tmp_path):
    """The Procfile's two workers (solo pools, so the test is strict), with any other
    worker of this session told to leave these queues alone meanwhile."""
    queues = (*OTHER_QUEUES, "webhooks")
    others = set()
    for queue in queues:
        for reply in current_app.control.cancel_consumer(queue, reply=True, timeout=2) or []:
            others.update(reply)
    processes = []
    try:
        for name, serves in (("webhooks", "webhooks"), ("worker", ",".join(OTHER_QUEUES))):
            log_path = tmp_path / f"{name}.log"
            log = open(log_path, "w")  # noqa: SIM115 (closed below)
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                 "--queues", serves, "--loglevel", "INFO", "--without-gossip",
                 "--without-mingle", "--without-heartbeat",
                 "--hostname", f"{name}-{os.getpid()}@%h"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env=subprocess_env(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
                                   DATAFI_RETRY_BASE_SECONDS="1"))
            process.log, process.log_path = log, log_path
            processes.append(process)
        for process in processes:
            wait_until(lambda p=process: "ready." in p.log_path.read_text()
                       or p.poll() is not None, timeout=90, message="a worker to start")
            assert process.poll() is None, process.log_path.read_text()[-3000:]
        yield processes
    finally:
        for process in processes:
            stop_tree(process)
            process.log.close()
        for queue in queues:
            if others:
                current_app.control.add_consumer(queue, destination=sorted(others),
                                                 reply=True, timeout=2)


def test_a_slow_receiver_does_not_delay_a_critical_in_app_notification_or_email(
        procfile_workers, make_workspace, smtp_server, email_on, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # to save an endpoint on loopback
    slow = receiver([Reply(delay=8)] * 4)
    smtp = smtp_server()
    email_on(smtp)
    workspace = make_workspace(members=1)
    member = workspace.people[0]
    # Policy events reach the slow receiver; the data source event below reaches no endpoint.
    webhook_endpoint_save(values={"name": "slow", "url": slow.url(), "categories": ["policies"]})
    for n in range(4):
        emit("policy.violation_detected", workspace=workspace, payload={"policy_name": f"p{n}"})
    wait_until(lambda: len(slow.received) >= 1, timeout=60,
               message="the webhook worker to be held by the slow receiver")

    event = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "Production Snowflake"})

    wait_until(lambda: Notification.objects.filter(user=member, event=event).exists(),
               timeout=60, message="the critical in-app notification")
    wait_until(lambda: Delivery.objects.filter(event=event, channel="email",
                                               status="delivered").exists(),
               timeout=60, message="the critical email")
    assert any("Production Snowflake" in r.message["Subject"] for r in smtp.received)
    # Meanwhile the receiver has not finished answering the webhooks (4 x 8 s, one by one).
    assert slow.answered < 4
    assert Delivery.objects.filter(channel="webhook").exclude(status="delivered").exists()
    wait_until(lambda: Delivery.objects.filter(channel="webhook", status="delivered").exists(),
               timeout=60, message="the slow receiver's first answer to be recorded")
