"""Run every process of a Procfile in the foreground; Ctrl-C stops them all, gracefully.

    python bin/procfile_run.py [Procfile]

Each line ``name: command`` starts ``command`` through /bin/sh in its own session, with its
output prefixed by ``name |``. On Ctrl-C (SIGINT) or SIGTERM, or when any process exits,
every process's leader gets SIGTERM, so gunicorn and Celery run their own warm shutdown
(finishing the task at hand), and only what is still running after ``PROCFILE_GRACE``
seconds (default 30) is killed. Exits with the first failing process's code, else 0.

If this runner is itself killed (even with SIGKILL), nothing is left behind: on Linux each
leader is started with a parent-death signal (SIGTERM), so it runs the same graceful
shutdown, and takes its own children (gunicorn workers, Celery's pool) with it.

Written here instead of using honcho because honcho signals whole process groups (Celery's
and gunicorn's children get SIGTERM behind their parents' backs) and kills after 5 s.
"""

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def read_procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries.append((name.strip(), command.strip()))
    return entries


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(parent_pid: int):
    """A ``preexec_fn``: the child gets SIGTERM when ``parent_pid`` dies (Linux; else None)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl  # looked up here: the child only calls it

    def preexec():
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent_pid:  # the runner died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def pipe_output(name: str, width: int, stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:<{width}} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "Procfile")
    grace = float(os.environ.get("PROCFILE_GRACE", "30"))
    entries = read_procfile(path)
    width = max(len(name) for name, _ in entries)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    processes = {}
    preexec = die_with(os.getpid())
    # Every process is started before any output thread: preexec_fn runs between fork and
    # exec, which is only safe while this process has a single thread.
    for name, command in entries:
        processes[name] = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"], start_new_session=True, preexec_fn=preexec,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
    for name, process in processes.items():
        threading.Thread(target=pipe_output, args=(name, width, process.stdout),
                         daemon=True).start()

    exit_code = 0
    while not stop.is_set():
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with code {process.returncode}; stopping the others")
                exit_code = process.returncode or 1
                stop.set()
                break
        stop.wait(0.2)

    print("stopping: " + ", ".join(processes))
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} still running after {grace:.0f}s: killing it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    print("all stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
