"""A task's start: the kept database connection is health-checked only when its socket
says the server may have ended the session (``config.celery``)."""

from types import SimpleNamespace

import psycopg
import pytest
from django.db import connection, connections

from config import celery as worker
from tests.support import wait_until

TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))


@pytest.fixture
def health_checks(live_db, postgres, monkeypatch):
    """The health checks (``SELECT 1``) Django runs, counted; each still runs."""
    checks = []
    wrapper = connections["default"]
    usable = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda: checks.append(wrapper.alias) or usable())
    connection.ensure_connection()
    return checks


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_task_on_a_quiet_kept_connection_starts_without_a_round_trip(health_checks):
    pid = backend_pid()

    worker._task_starts(sender=TASK)

    assert backend_pid() == pid
    assert health_checks == []


def test_a_task_after_the_server_ended_the_session_gets_a_new_one(health_checks):
    pid = backend_pid()
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                         user=db["USER"] or "postgres", dbname=db["NAME"],
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        wait_until(lambda: other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                         [pid]).fetchone()[0] == 0,
                   timeout=30, message="the session to end")

    worker._task_starts(sender=TASK)

    assert backend_pid() != pid  # the task's first query, on a new session
    assert health_checks == ["default"]  # the check ran (and failed) before it
