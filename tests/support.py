"""Helpers for tests (fixtures live in conftest.py)."""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def subprocess_env(**overrides) -> dict:
    """The environment for a child process that uses the test database and broker."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = (f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
                        f"{db['PORT'] or 5432}/{db['NAME']}")
    env = {**os.environ, "DATABASE_URL": database_url,
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "DATAFI_VAR_DIR": str(settings.VAR_DIR), "PYTHONUNBUFFERED": "1"}
    env.update(overrides)
    return env


def emit_and_route(event_type: str, workspace, **payload):
    """Emit, then route at once in this process, as the worker does after commit."""
    from events import emit
    from notifications.services import event_route

    event = emit(event_type, workspace=workspace, payload=payload)
    event_route(event_id=event.pk)
    return event


def run_concurrently(fn, *, times: int, timeout: float = 60.0) -> list:
    """Call ``fn()`` in ``times`` threads released at once; return their results.

    Fails the test with the errors if any call raised. Each thread closes its own database
    connection, so a transactional test can tear down afterwards.
    """
    import threading

    barrier = threading.Barrier(times)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(fn())
        except Exception as exc:  # reported by the calling thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        pytest.fail(f"concurrent calls failed: {errors!r}")
    return results


def api_client_for(user):
    """A REST client signed in as ``user``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client
