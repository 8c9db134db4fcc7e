"""How every process reports on itself, for the settings (and gunicorn's configuration):
where the metrics files go, and the log format.

- ``PROMETHEUS_MULTIPROC_DIR``: prometheus-client's multiprocess mode (``core.metrics``):
  every process of this host writes its values to files there and a scrape sums them. It is
  exported to the environment before anything imports prometheus_client (which reads it
  then), so the processes a process starts inherit it too.
- ``LOG_FORMAT=json``: one JSON object per line (python-json-logger), with the log context
  (``core.logcontext``: event_id, delivery_id, digest_id, task_id, queue) as fields, in every
  process: web (gunicorn's own loggers through ``config/gunicorn.py``), workers and beat.
"""

import logging
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

LOG_FORMATTERS = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "format": "%(levelname)s %(name)s %(process)d %(message)s",
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": "time",
    },
}


def metrics_dir(env, var_dir: Path) -> str:
    """``PROMETHEUS_MULTIPROC_DIR`` (default ``var_dir/metrics``), exported and created.
    Empty it only while no process runs: bin/serve does at start."""
    path = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", env.str(
        "PROMETHEUS_MULTIPROC_DIR", default=str(var_dir / "metrics")))
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def log_format(env) -> str:
    value = env.str("LOG_FORMAT", default="plain")
    if value not in LOG_FORMATTERS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {value!r}.")
    if value == "json":
        logging.captureWarnings(True)  # Python's warnings as records, not plain stderr lines
    return value


def logging_config(log_format: str, level: str) -> dict:
    """Django's ``LOGGING``: one console handler on the root logger, in ``log_format``."""
    json_lines = log_format == "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {log_format: LOG_FORMATTERS[log_format]},
        "filters": {"context": {"()": "core.logcontext.LogContextFilter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format,
                                 **({"filters": ["context"]} if json_lines else {})}},
        "root": {"handlers": ["console"], "level": level},
        # Celery's task logger gets a handler of its own unless it has one: ours, in JSON.
        "loggers": ({"celery.task": {"handlers": ["console"], "propagate": False}}
                    if json_lines else {}),
    }
