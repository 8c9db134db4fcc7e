import os

from celery import Celery, signals
from django.db import close_old_connections

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
    """
    for fixup in getattr(app, "_fixups", None) or ():
        worker_fixup = getattr(fixup, "_worker_fixup", None)
        if worker_fixup is not None:
            signals.task_prerun.disconnect(worker_fixup.on_task_prerun)
            signals.task_postrun.disconnect(worker_fixup.on_task_postrun)
    signals.task_prerun.connect(_close_old_connections, weak=False)
    signals.task_postrun.connect(_close_old_connections, weak=False)


def _close_old_connections(sender=None, **kwargs) -> None:
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
