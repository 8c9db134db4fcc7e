"""The service's Prometheus metrics, defined once: every layer counts here, none imports a
layer above it to do so, and ``operations`` serves them at ``/metrics``.

prometheus-client in its multiprocess mode: each process (gunicorn worker, Celery pool
process, beat, a management command) writes its values to memory-mapped files of its own in
``PROMETHEUS_MULTIPROC_DIR`` (settings set it, under ``DATAFI_VAR_DIR`` by default, before
this module can be imported), and a scrape sums the files of every process on the host.
Counters of a process that exited stay counted; ``TASKS_IN_PROGRESS`` counts live processes
only (``multiprocess.mark_process_dead``, called when a gunicorn worker or a pool process
exits). ``bin/serve`` empties the directory before it starts the processes.

Labels are bounded: event type key (the catalog), priority, channel, outcome or status,
queue, task name, error kind (the transports' words). Never a user, an address, an id or a
payload value. Call sites read ``metrics.NAME`` at call time (``from core import metrics``),
and count after commit where a rollback would make the count wrong.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import Counter, Gauge, Histogram, values

if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not values.ValueClass._multiprocess:
    raise ImproperlyConfigured(
        "prometheus_client was imported before the settings set PROMETHEUS_MULTIPROC_DIR: "
        "its values would stay in this process. Import core.metrics after django.setup().")

#: Emit to delivered: milliseconds for the bell, seconds for email, up to hours for a
#: send that waited for its channel or its retries.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                   1800, 3600, 7200)
#: A task or one send attempt: milliseconds to the SMTP and webhook timeouts.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

EVENTS_EMITTED = Counter(
    "datafi_events_emitted",
    "Events emit() recorded (not a deduplicated repeat), by event type and priority.",
    ["event_type", "priority"])
NOTIFICATIONS = Counter(
    "datafi_notifications",
    "Recipients routing decided to notify, per channel: an in-app notification, an email "
    "or a webhook delivery, sent now or in a digest.", ["channel"])
DELIVERIES = Counter(
    "datafi_deliveries",
    "Messages finished, per channel: one per event sent alone or per digest; outcome "
    "delivered, failed or cancelled.", ["channel", "outcome"])
DELIVERY_LATENCY = Histogram(
    "datafi_delivery_latency_seconds",
    "Emit to delivered, per channel, of the events sent alone (not in a digest).",
    ["channel"], buckets=LATENCY_BUCKETS)
DELIVERY_ATTEMPTS = Counter(
    "datafi_delivery_attempts",
    "Send attempts, per channel and outcome (delivered, transient, permanent).",
    ["channel", "outcome"])
DELIVERY_ATTEMPT_SECONDS = Histogram(
    "datafi_delivery_attempt_seconds", "How long one send attempt took, per channel.",
    ["channel"], buckets=DURATION_BUCKETS)
DELIVERY_ERRORS = Counter(
    "datafi_delivery_errors",
    "Failed send attempts by kind (unreachable, timeout, tls_failed, auth_failed, rejected, "
    "server_error, rate_limited, ...), per channel: SMTP error kinds, webhook endpoint "
    "failures.",
    ["channel", "kind"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "datafi_outbox_publish_failures",
    "Routing jobs that could not be published (broker down): their events wait for the "
    "outbox sweep.", [])
TASKS = Counter(
    "datafi_tasks", "Celery tasks run, by task, queue and final state (success, failure, "
    "retry).", ["task", "queue", "state"])
TASK_DURATION = Histogram(  # by task only: the queue is on datafi_tasks_total (cardinality)
    "datafi_task_duration_seconds", "How long a Celery task ran, by task.",
    ["task"], buckets=DURATION_BUCKETS)
TASKS_IN_PROGRESS = Gauge(
    "datafi_tasks_in_progress", "Celery tasks running now, by task (live processes).",
    ["task"], multiprocess_mode="livesum")


def observe_many(histogram, amount: float, count: int) -> None:
    """``count`` observations of ``amount`` in ``histogram`` (a labelled child), as that many
    ``observe`` calls would record them, in two increments: a fan-out's notifications share
    their event's latency. (prometheus-client has no weighted observe; this writes the same
    sum and bucket values its ``observe`` writes.)"""
    histogram._raise_if_not_observable()
    histogram._sum.inc(amount * count)
    for bucket, bound in zip(histogram._buckets, histogram._upper_bounds, strict=True):
        if amount <= bound:
            bucket.inc(count)
            break
