"""Shared fixtures: users and workspaces, API clients, a real Celery worker process.

With DATAFI_REQUIRE_SERVICES=1 (set by .ci/run) a test that would skip because a service
is missing fails instead, so CI always runs against real PostgreSQL, Redis and a worker.
"""

import os
import subprocess
import sys
import threading
import uuid

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from events.models import Membership, Workspace
from events.services.catalog import catalog_sync
from tests.support import (
    ROOT,
    SESSION_MARKER,
    Served,
    api_client_for,
    describe,
    free_port,
    processes_of_this_session,
    stop_processes,
    stop_tree,
    subprocess_env,
    wait_until,
)

REQUIRE_SERVICES = os.environ.get("DATAFI_REQUIRE_SERVICES") == "1"
#: The session worker serves every queue declared in settings (the priority lane too).
WORKER_QUEUES = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)


def pytest_configure(config):
    # Inherited by every process the tests start: see no_process_left_behind.
    os.environ[SESSION_MARKER] = uuid.uuid4().hex


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """Fail the run if any process started by the tests outlives them (and stop it).

    Torn down after every other session fixture (it is set up first), so a worker or a
    served stack that its own fixture stopped is no longer there.
    """
    yield
    survivors = processes_of_this_session()
    if survivors:
        names = [describe(p) for p in survivors]
        stop_processes(survivors, grace=10)
        pytest.fail("processes started by the tests outlived them (now stopped):\n"
                    + "\n".join(names), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and call.excinfo is not None:
        report.outcome = "failed"
        report.longrepr = f"skipped with DATAFI_REQUIRE_SERVICES=1: {call.excinfo.value}"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are created by the hundred in tests; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def broker_not_known_down(monkeypatch):
    """Each test starts in a process that has not seen the broker fail: a publish that an
    earlier test made fail (a broker stopped on purpose) puts the process in its back-off
    (``DATAFI_BROKER_BACKOFF_SECONDS``), which would hold back this test's publishes."""
    monkeypatch.setattr("events.services.outbox._broker_down_until", 0.0)


@pytest.fixture(autouse=True)
def fresh_cache_namespace(request, settings):
    """Each test its own cache keys (throttle counters): tests never throttle each other.

    A fresh key prefix rather than ``cache.clear()``, which on Redis would flush the
    broker's database too. Not for a test with the session's worker: the worker shares the
    configured prefix, and with it the routing request flag that emit sets and routing
    clears (``events.services.routing_request``).
    """
    if "celery_worker" in request.fixturenames:
        return
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture
def postgres():
    """Skip (fail in CI) unless the database is PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def redis_broker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://...")


# --- people -------------------------------------------------------------------------------

@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def make(username=None, *, staff=False, superuser=False, email=None, **extra):
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        return get_user_model().objects.create_user(
            username=username, email=email or f"{username}@example.com", password="pw",
            is_staff=staff or superuser, is_superuser=superuser, **extra,
        )

    return make


@pytest.fixture
def make_workspace(db, make_user):
    def make(name="Analytics", *, members=0, users=()):
        workspace = Workspace.objects.create(name=name)
        people = list(users) + [make_user() for _ in range(members)]
        Membership.objects.bulk_create(Membership(workspace=workspace, user=u) for u in people)
        workspace.people = people
        return workspace

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def staff(make_user):
    return make_user("root", superuser=True)


@pytest.fixture
def api(user):
    return api_client_for(user)


@pytest.fixture
def staff_api(staff):
    return api_client_for(staff)


# --- a database other processes can see, and a real worker -------------------------------

@pytest.fixture
def live_db(transactional_db):
    """Committed data (visible to a worker process), with the catalog in place.

    Transactional tests empty every table afterwards, so the catalog is synced again here.
    """
    catalog_sync()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real ``celery worker`` process on the test database and the configured broker."""
    from config.celery import app

    with django_db_blocker.unblock():
        app.control.purge()
        # Retries within a test; an escalation's minute is a second (after_minutes: 3 is 3 s).
        env = subprocess_env(DATAFI_RETRY_BASE_SECONDS="1", DATAFI_ESCALATION_MINUTE_SECONDS="1")
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--queues", WORKER_QUEUES, "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "ready." in log_path.read_text() or process.poll() is not None,
                   timeout=180, message="the celery worker to start")
        if process.poll() is not None:
            pytest.fail(f"celery worker exited:\n{log_path.read_text()[-3000:]}")
        process.log_path = log_path
        yield process
    finally:
        stop_tree(process, grace=30)


@pytest.fixture
def served(tmp_path):
    """``bin/serve`` on an empty var folder and a free port, as on a fresh clone.

    Stopped however the test ends: SIGTERM to the runner (its graceful stop), then whatever
    of its process tree is still running is killed.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update(DATAFI_VAR_DIR=str(tmp_path / "var"), PORT=str(port), PYTHONUNBUFFERED="1",
               WEB_CONCURRENCY="1", WORKER_CONCURRENCY="1")
    process = subprocess.Popen(
        [str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    server = Served(process, base_url=f"http://127.0.0.1:{port}", env=env,
                    var_dir=tmp_path / "var")
    threading.Thread(target=lambda: server.output.extend(iter(process.stdout.readline, "")),
                     daemon=True).start()
    try:
        yield server
    finally:
        stop_tree(process, grace=60)
