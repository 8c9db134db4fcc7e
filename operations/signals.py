"""Every Celery task measured and its log lines tagged, from Celery's signals; a pool
process's live values dropped when it exits; beat's first heartbeat sent at once.

Connected once per process from ``OperationsConfig.ready()``; prefork children inherit them.
"""

import contextlib
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime

from celery import signals
from celery.apps import worker as celery_worker
from django.conf import settings
from prometheus_client import multiprocess

from config import control_plane
from core import logcontext, metrics

logger = logging.getLogger(__name__)

_started: dict[str, tuple[float, str]] = {}  # task id -> (perf_counter at start, queue)


def connect() -> None:
    signals.task_prerun.connect(task_started, weak=False, dispatch_uid="operations.started")
    signals.task_postrun.connect(task_finished, weak=False, dispatch_uid="operations.finished")
    signals.worker_process_shutdown.connect(process_exiting, weak=False,
                                            dispatch_uid="operations.process_exiting")
    signals.beat_init.connect(beat_started, weak=False, dispatch_uid="operations.beat_started")
    if settings.LOG_FORMAT == "json":
        # The worker's few notices from its signal handlers (warm shutdown, restart) are
        # printed, not logged (a handler must not take the logging locks): JSON too.
        celery_worker.safe_say = say_json


def say_json(msg, f=sys.__stderr__) -> None:
    """Celery's ``safe_say`` as one JSON line, written with one ``os.write`` as Celery does."""
    line = json.dumps({"message": str(msg).strip(), "level": "WARNING",
                       "logger": "celery.apps.worker", "process": os.getpid(),
                       "time": datetime.now(UTC).isoformat()})
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(f.fileno(), f"{line}\n".encode())


def _queue(task) -> str:
    info = getattr(task.request, "delivery_info", None) or {}
    return info.get("routing_key") or ("eager" if task.request.is_eager else "")


def task_started(sender=None, task_id=None, task=None, **kwargs) -> None:
    """The task's id and queue into the log context; its clock and in-progress gauge on."""
    task = task or sender
    queue = _queue(task)
    logcontext.log_context_set({"task_id": task_id, "queue": queue or None})
    _started[task_id] = (time.perf_counter(), queue)
    metrics.TASKS_IN_PROGRESS.labels(task.name).inc()


def task_finished(sender=None, task_id=None, task=None, state=None, **kwargs) -> None:
    """Count the task by its final state and time it; clear the log context."""
    task = task or sender
    started, queue = _started.pop(task_id, (None, _queue(task)))
    if started is not None:
        metrics.TASK_DURATION.labels(task.name).observe(time.perf_counter() - started)
        metrics.TASKS_IN_PROGRESS.labels(task.name).dec()
    metrics.TASKS.labels(task.name, queue, (state or "unknown").lower()).inc()
    logcontext.log_context_set({})


def process_exiting(**kwargs) -> None:
    """A pool process exits: its live gauges (tasks in progress) stop counting."""
    multiprocess.mark_process_dead(os.getpid())


def beat_started(sender=None, **kwargs) -> None:
    """Beat just started: send its heartbeat now rather than one interval later, so a
    fresh deployment is ready within seconds."""
    try:
        sender.app.send_task(control_plane.BEAT_HEARTBEAT, retry=False)
    except Exception as exc:  # the broker is down: the schedule sends the next one
        logger.warning("first beat heartbeat not sent: %r", exc)
