"""What a log line is about: ``event_id``, ``delivery_id``, ``digest_id``, ``task_id``,
``queue``, kept in a context variable and added to every record by ``LogContextFilter``.

A task sets ``task_id`` and ``queue`` (the Celery signals in ``operations``); a service
that works on one event, delivery or digest wraps that work in ``log_context(...)``, or adds
what it learns on the way with ``log_context_add``, which lasts until the enclosing
``log_context`` ends. ``LOG_FORMAT=json`` prints them as fields of each JSON line.
"""

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

FIELDS = ("event_id", "delivery_id", "digest_id", "task_id", "queue")

_context: ContextVar = ContextVar("datafi_log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**fields):
    """Add ``fields`` (None ones left out) to every record logged inside the block."""
    token = _context.set({**_context.get(), **_clean(fields)})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_add(**fields) -> None:
    """Add ``fields`` to the current context, until the enclosing ``log_context`` (or the
    task) ends. Outside one, they last for the rest of this thread's context."""
    _context.set({**_context.get(), **_clean(fields)})


def log_context_set(fields: dict) -> None:
    """Replace the whole context (a task starting or ending)."""
    _context.set(_clean(fields))


def current() -> dict[str, str]:
    return dict(_context.get())


def _clean(fields: dict) -> dict[str, str]:
    return {name: str(value) for name, value in fields.items() if value is not None}


class LogContextFilter(logging.Filter):
    """Copies the context onto each record (a field the call set with ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
