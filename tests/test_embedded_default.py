"""The README's run command on a fresh machine: SQLite, filesystem broker, web+worker+beat."""

import contextlib
import os
import signal
import subprocess
import sys

import psutil
import requests

from tests.support import (
    HTTP_NOT_YET,
    ROOT,
    process_tree,
    stop_processes,
    stop_tree,
    wait_until,
)


def test_run_command_serves_admin_and_delivers_an_event_over_http(served):
    admin_password = served.admin_password()
    assert "Created workspace ws_demo ('Demo') owned by 'admin'" in served.log()
    assert "Traceback" not in served.log(), served.log()
    served.wait_ready()
    assert (served.var_dir / "db.sqlite3").exists()
    assert (served.var_dir / "broker").is_dir()

    headers = {"Authorization": f"Token {served.token(admin_password)}"}
    def emit(event_type, payload):
        created = requests.post(f"{served.base_url}/api/events/", headers=headers, timeout=30,
                                json={"event_type": event_type, "payload": payload})
        assert created.status_code == 201, created.text

    # A file in the urgent queue that is not a whole message (as a publisher that died
    # mid-write leaves): the worker sets it aside and goes on; nothing stops the service.
    (served.var_dir / "broker" / "queue" / "0_half-written.urgent.msg").write_text('{"bo')
    emit("policy.violation_detected", {"policy_name": "PII"})

    def notifications():
        response = requests.get(f"{served.base_url}/api/notifications/", headers=headers,
                                timeout=30)
        return response.json()["results"]

    results = wait_until(notifications, timeout=120, ignore=HTTP_NOT_YET,
                         message="the worker to deliver the event")
    assert results[0]["title"] == "Policy violation: PII"
    assert results[0]["priority"] == "critical"
    processed = served.var_dir / "broker" / "processed"
    assert (processed / "0_half-written.urgent.msg.unreadable").exists()
    assert "0_half-written.urgent.msg in queue 'urgent' is not a message" in served.log()

    # A medium event is routed in a batch (its request flag lives in the file cache) and
    # reaches the bell in the 5-minute digest, flushed here on demand.
    emit("query.long_running_query", {"query_name": "nightly"})

    def digest():
        flush = requests.post(f"{served.base_url}/api/digests/flush/", headers=headers,
                              json={"bucket": "5m"}, timeout=30)
        assert flush.status_code == 202, flush.text
        return [n for n in notifications() if n["kind"] == "digest"]

    digests = wait_until(digest, timeout=120, ignore=HTTP_NOT_YET,
                         message="the medium event in a 5-minute digest")
    assert [item["title"] for item in digests[0]["items"]] == ["Long-running query: nightly"]

    # Ctrl-C stops web, worker and beat.
    os.killpg(served.pid, signal.SIGINT)
    assert served.process.wait(timeout=120) is not None
    log = served.log()
    assert "beat: Starting..." in log
    assert "ready." in log  # the worker
    # Each process ran its own graceful shutdown: none had to be killed, no child was
    # signalled behind its parent's back.
    assert "all stopped" in log
    assert "killing it" not in log, log[-3000:]
    assert "exited with 'signal" not in log and "was sent SIGTERM" not in log, log[-3000:]


CELERY_WORKERS = sum(" worker " in line for line in (ROOT / "Procfile").read_text().splitlines())


def running_command_lines(processes: list[psutil.Process]) -> set[str]:
    """The command lines of those still running: a starting process may spawn short-lived
    helpers (``uname`` for Celery's banner), gone by the time they are asked."""
    lines = set()
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            lines.add(" ".join(process.cmdline()))
    return lines


def test_a_killed_serve_leaves_no_process_behind(served):
    served.admin_password()
    served.wait_ready()
    wait_until(lambda: served.log().count(" ready.") >= CELERY_WORKERS
               and "beat: Starting..." in served.log(),
               timeout=180, message=f"the {CELERY_WORKERS} Celery workers and beat to start")
    tree = process_tree(served.pid)
    names = running_command_lines(tree)
    assert any("gunicorn" in n for n in names) and any("worker" in n for n in names), names
    assert len(tree) >= 5, names  # runner, gunicorn master + worker, celery worker, beat

    os.kill(served.pid, signal.SIGKILL)  # the runner only: no chance to stop anything

    _, alive = psutil.wait_procs(tree[1:], timeout=120)
    assert not alive, running_command_lines(alive)


PROCFILE = """\
one: {python} -c "import time; time.sleep(600)"
two: {python} -c "import time; time.sleep(600)"
"""


def test_procfile_run_children_die_with_a_killed_runner(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(PROCFILE.format(python=sys.executable))
    runner = subprocess.Popen([sys.executable, str(ROOT / "bin" / "procfile_run.py"),
                               str(procfile)], stdout=subprocess.DEVNULL)
    children = []
    try:
        def started():
            found = [p for p in process_tree(runner.pid)[1:]
                     if "time.sleep(600)" in " ".join(p.cmdline())]
            return len(found) == 2 and found

        children = wait_until(started, timeout=60, ignore=(psutil.Error,),
                              message="the Procfile's two processes to start")

        runner.kill()  # SIGKILL: the runner cannot stop anything itself
        runner.wait(timeout=30)

        _, alive = psutil.wait_procs(children, timeout=60)
        assert not alive, alive
    finally:
        stop_tree(runner)
        stop_processes(children, grace=10)
