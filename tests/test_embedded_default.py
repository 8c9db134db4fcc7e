"""The README's run command on a fresh machine: SQLite, filesystem broker, web+worker+beat."""

import os
import re
import signal
import socket
import subprocess
import threading

import pytest
import requests

from tests.support import ROOT, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """``bin/serve`` on an empty var folder, its output collected; stopped with Ctrl-C."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update(DATAFI_VAR_DIR=str(tmp_path / "var"), PORT=str(port), PYTHONUNBUFFERED="1",
               WEB_CONCURRENCY="1", WORKER_CONCURRENCY="1")
    process = subprocess.Popen(
        [str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(process.stdout.readline, "")),
                              daemon=True)
    reader.start()
    process.output = output
    process.base_url = f"http://127.0.0.1:{port}"
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_run_command_serves_admin_and_delivers_an_event_over_http(served, tmp_path):
    def password():
        match = re.search(r"with password: (\S+)", "".join(served.output))
        return match and match.group(1)

    admin_password = wait_until(password, timeout=120, message="the admin password")
    assert not any("Traceback" in line for line in served.output), "".join(served.output)

    def up():
        try:
            return requests.get(f"{served.base_url}/admin/login/", timeout=2).status_code == 200
        except requests.RequestException:  # refused, or too slow to answer yet
            return False

    wait_until(up, timeout=60, message="the web process")
    assert (tmp_path / "var" / "db.sqlite3").exists()
    assert (tmp_path / "var" / "broker").is_dir()

    token = requests.post(f"{served.base_url}/api/auth/token/",
                          data={"username": "admin", "password": admin_password},
                          timeout=10).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    created = requests.post(
        f"{served.base_url}/api/events/", headers=headers, timeout=10,
        json={"event_type": "policy.violation_detected", "payload": {"policy_name": "PII"}},
    )
    assert created.status_code == 201, created.text

    def notifications():
        response = requests.get(f"{served.base_url}/api/notifications/", headers=headers,
                                timeout=10)
        return response.json()["results"]

    results = wait_until(notifications, timeout=60, message="the worker to deliver the event")
    assert results[0]["title"] == "Policy violation: PII"
    assert results[0]["priority"] == "critical"

    # Ctrl-C stops web, worker and beat.
    os.killpg(served.pid, signal.SIGINT)
    assert served.wait(timeout=60) is not None
    log = "".join(served.output)
    assert "beat: Starting..." in log
    assert "ready." in log  # the worker
    # Each process ran its own graceful shutdown: none had to be killed, no child was
    # signalled behind its parent's back.
    assert "all stopped" in log
    assert "killing it" not in log, log[-3000:]
    assert "exited with 'signal" not in log and "was sent SIGTERM" not in log, log[-3000:]
