"""Helpers for tests (fixtures live in conftest.py)."""

import contextlib
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate, *, timeout: float = 60.0, interval: float = 0.05, message: str = "",
               ignore: tuple[type[BaseException], ...] = ()):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds.

    An exception of a type in ``ignore`` counts as "not yet" (a server still starting:
    refused, reset, timed out). At the deadline the test fails naming what it waited for,
    the last value and the last ignored error. Polls fast at first, then every 0.5 s.
    """
    deadline = time.monotonic() + timeout
    last_value, last_error = None, None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            value, last_error = None, exc
        if value:
            return value
        last_value = value
        if time.monotonic() > deadline:
            detail = f"; last value: {last_value!r}"
            if last_error is not None:
                detail += f"; last error: {last_error!r}"
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# What a server that is starting (or briefly overloaded) answers: "not yet".
HTTP_NOT_YET = (requests.RequestException,)


def http_get_ok(url: str, **kwargs) -> requests.Response | None:
    """GET ``url``; the response if it is a 2xx, else None. Meant for ``wait_until``."""
    response = requests.get(url, timeout=kwargs.pop("timeout", 10), **kwargs)
    return response if response.ok else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes ----------------------------------------------------------------------------

# Every process the tests start inherits this variable (subprocess_env copies os.environ),
# so the session can find the ones left behind even after they were re-parented.
SESSION_MARKER = "DATAFI_TEST_SESSION"


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its live descendants (an empty list when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_processes(processes: list[psutil.Process], *, grace: float = 30.0) -> list[str]:
    """SIGTERM ``processes``, SIGKILL what still runs after ``grace`` seconds, reap them.

    Returns a description of each process that had to be killed.
    """
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace)
    killed = []
    for process in alive:
        with contextlib.suppress(psutil.Error):
            killed.append(describe(process))
            process.kill()
    psutil.wait_procs(alive, timeout=10)
    return killed


def stop_tree(popen: subprocess.Popen, *, grace: float = 30.0) -> None:
    """Stop a started process and every descendant it has now, however the test ended.

    The tree is listed before anything is signalled: once a parent is gone its children
    are re-parented and can no longer be found from it.
    """
    tree = process_tree(popen.pid)
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    stop_processes([p for p in tree if p.pid != popen.pid], grace=grace)


def processes_of_this_session() -> list[psutil.Process]:
    """Live processes, other than this one, started under this test session's marker."""
    marker = os.environ.get(SESSION_MARKER)
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if (process.status() != psutil.STATUS_ZOMBIE
                    and process.environ().get(SESSION_MARKER) == marker):
                found.append(process)
    return found


def describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {process.pid}"


class Served:
    """A running ``bin/serve`` (see the ``served`` fixture): its output, URL and environment."""

    def __init__(self, process: subprocess.Popen, *, base_url: str, env: dict, var_dir: Path):
        self.process, self.base_url, self.env, self.var_dir = process, base_url, env, var_dir
        self.output: list[str] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return "".join(self.output)

    def _running(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"bin/serve exited with {self.process.returncode}:\n{self.log()[-5000:]}")

    def admin_password(self, timeout: float = 300) -> str:
        """The password ``bin/serve`` printed for the admin it created."""
        def printed():
            match = re.search(r"with password: (\S+)", self.log())
            if not match:
                self._running()
            return match and match.group(1)

        return wait_until(printed, timeout=timeout, message="bin/serve to print the password")

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the web process answers (anything else an HTTP client sees is "not yet")."""
        def answers():
            self._running()
            return http_get_ok(f"{self.base_url}/admin/login/")

        wait_until(answers, timeout=timeout, ignore=HTTP_NOT_YET,
                   message=f"the web process at {self.base_url}")

    def token(self, password: str) -> str:
        response = requests.post(f"{self.base_url}/api/auth/token/", timeout=30,
                                 data={"username": "admin", "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]


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
    from notifications.routing.route import event_route

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


def send_when_due(delivery_id) -> str:
    """Wait for the delivery's due time, as the countdown task would, then attempt it."""
    from django.utils import timezone

    from notifications.deliveries.send import delivery_send
    from notifications.models import Delivery

    row = Delivery.objects.get(pk=delivery_id)
    if row.next_attempt_at:
        wait_until(lambda: timezone.now() >= row.next_attempt_at, timeout=30,
                   message="the retry to be due")
    return delivery_send(delivery_id=delivery_id)
