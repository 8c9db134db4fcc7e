import os
import select

from celery import Celery, signals
from django.db import close_old_connections, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def reuse_database_connections(**kwargs) -> None:
    """Let tasks reuse database connections as web requests do (``CONN_MAX_AGE``).

    Celery's Django fix-up closes every connection before and after each task, whatever
    ``CONN_MAX_AGE`` says: a new PostgreSQL session per task. Its two task hooks are
    replaced here by Django's own request-boundary rule, ``close_old_connections``: a
    connection older than ``CONN_MAX_AGE`` or left unusable by an error is closed, and a
    kept one is health-checked before its next use (``CONN_HEALTH_CHECKS``). The fix-up's
    other hooks stay: a prefork child drops the connection inherited from its parent at
    ``worker_process_init`` without touching the parent's, so no two processes ever share
    one. Runs after the fix-up's own ``worker_init`` handler, which installs those hooks.

    The health check costs a round trip (``SELECT 1``) at the start of every task, one per
    hop of a critical event's path; a task starts without it when its kept connection is
    quiet (``_quiet``).
    """
    for fixup in getattr(app, "_fixups", None) or ():
        worker_fixup = getattr(fixup, "_worker_fixup", None)
        if worker_fixup is not None:
            signals.task_prerun.disconnect(worker_fixup.on_task_prerun)
            signals.task_postrun.disconnect(worker_fixup.on_task_postrun)
    signals.task_prerun.connect(_task_starts, weak=False)
    signals.task_postrun.connect(_close_old_connections, weak=False)


def _close_old_connections(sender=None, **kwargs) -> bool:
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return False
    close_old_connections()
    return True


def _task_starts(sender=None, **kwargs) -> None:
    """``close_old_connections``, then each kept connection whose socket is quiet is taken
    as healthy without its ``SELECT 1``."""
    if not _close_old_connections(sender):
        return
    for connection in connections.all(initialized_only=True):
        if (connection.connection is not None and connection.health_check_enabled
                and not connection.health_check_done and _quiet(connection)):
            connection.health_check_done = True


def _quiet(connection) -> bool:
    """Nothing has arrived on the PostgreSQL connection's socket since its last answer. A
    server that ends a session (a restart, ``pg_terminate_backend``, an idle timeout) sends
    an error and closes it, which makes the socket readable: then Django's health check
    runs and replaces the connection before the task's first query. (A host gone without
    a word fails that query, as it would fail the check: the task's own retry, or the
    sweep, sends again.)"""
    if connection.vendor != "postgresql":
        return False
    try:
        readable, _, _ = select.select([connection.connection.fileno()], [], [], 0)
    except (OSError, ValueError, connection.Database.Error):
        return False
    return not readable
