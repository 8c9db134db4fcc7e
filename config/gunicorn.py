"""gunicorn's configuration (the Procfile's ``web``: ``gunicorn -c config/gunicorn.py ...``).

- A worker that exits (a crash, a restart, SIGKILL) is marked dead for the metrics: its live
  gauges stop counting; its counters stay in the sum (prometheus-client multiprocess mode).
- ``LOG_FORMAT=json``: gunicorn's own error and access logs are JSON lines too, with the
  request's method, path, status and duration as fields.

The master reads the project's settings module for the same values as every process
(``PROMETHEUS_MULTIPROC_DIR``, ``LOG_FORMAT``) without starting Django.
"""

import contextlib
import logging

# Reading the settings module also exports PROMETHEUS_MULTIPROC_DIR to the environment,
# for this master (child_exit) and the workers it forks.
from config import observability
from config import settings as project


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class AccessFields(logging.Filter):
    """gunicorn's access record as fields: its arguments are the request's atoms."""

    FIELDS = {"method": "m", "path": "U", "status": "s", "remote_addr": "h",
              "user_agent": "a"}

    def filter(self, record):
        atoms = record.args if isinstance(record.args, dict) else None
        if atoms is not None:
            for name, atom in self.FIELDS.items():
                setattr(record, name, atoms.get(atom))
            with contextlib.suppress(TypeError, ValueError):  # "-" when gunicorn lacks it
                record.duration_ms = round(int(atoms.get("D")) / 1000, 1)
        return True


if project.LOG_FORMAT == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": observability.LOG_FORMATTERS["json"]},
        "filters": {"access": {"()": AccessFields}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json",
                        "stream": "ext://sys.stdout"},
            "access": {"class": "logging.StreamHandler", "formatter": "json",
                       "filters": ["access"], "stream": "ext://sys.stdout"},
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
