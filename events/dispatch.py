"""Work the floor hands to the layers above, by job: they register who does it.

``events`` records events and knows they must be routed; it does not know who routes them
or by which task. The app that routes registers a Celery task for each job in its
``AppConfig.ready()`` (``notifications.apps``); the floor publishes through ``publish``.
"""

from typing import Any

#: Route one critical or high event now (the priority lane).
ROUTE_URGENT = "route_urgent"
#: Route one event (a medium, low or info event on its own).
ROUTE = "route"
#: Route every pending medium, low and info event, in batches.
ROUTE_PENDING = "route_pending"

JOBS = (ROUTE_URGENT, ROUTE, ROUTE_PENDING)

_tasks: dict[str, Any] = {}


class NoHandler(LookupError):
    """No app registered a task for a job (the routing app is not installed)."""


def register(job: str, task) -> None:
    """Have ``task`` (a Celery task) do ``job``; replaces an earlier registration."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; one of {', '.join(JOBS)}")
    _tasks[job] = task


def publish(job: str, **kwargs) -> None:
    """Publish ``job`` with ``kwargs`` now: one attempt, no publish retries (the caller
    decides what a broker failure means). Raises the broker's error, or ``NoHandler``."""
    task = _tasks.get(job)
    if task is None:
        raise NoHandler(f"no task is registered for the job {job!r}")
    task.apply_async(kwargs=kwargs, retry=False)
