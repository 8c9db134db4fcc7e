"""Events: the catalog, workspaces and ``emit()``.

``from events import emit`` is the in-process API for other Django apps.
"""


def emit(event_type, **kwargs):
    """Record an event and route it after commit. See ``events.services.emit.event_emit``."""
    from .services.emit import event_emit

    return event_emit(event_type, **kwargs)


__all__ = ["emit"]
