"""How the event catalog and the event log show routing, told by the app that routes.

The catalog's admin list and REST API show each event type's effective channels, and an
event's admin page why each person got it or not; but routing is a higher layer's: it
registers a describer and an explainer in its ``AppConfig.ready()`` (``notifications.apps``),
and the views call them. Without them they show nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from .models import EventType


@dataclass(frozen=True)
class EventTypeRouting:
    """Where an event type's events go, in plain data."""

    channels: list[str]
    source: str  # e.g. "event_type_rule", "category_rule", "priority_default"
    source_label: str  # the same in words
    extra_emails: list[str] = field(default_factory=list)


#: Loads what it needs once (e.g. every routing rule) and returns a function that
#: describes one event type: one query for a whole page of the catalog.
Describer = Callable[[], Callable[[EventType], EventTypeRouting]]

_describer: Describer | None = None


def register_describer(describer: Describer) -> None:
    global _describer
    _describer = describer


def routing_describer() -> Callable[[EventType], EventTypeRouting | None]:
    """A function describing event types, loaded for one page (or nothing to show)."""
    if _describer is None:
        return lambda event_type: None
    return _describer()


#: ``explain(event) -> list of (username, {channel: (decision, detail)})`` for the people the
#: event was for, registered by the routing app; the event's admin page shows it.
Explainer = Callable[[object], list]

_explainer: Explainer | None = None


def register_explainer(explainer: Explainer) -> None:
    global _explainer
    _explainer = explainer


def explain_event(event) -> list:
    """Each person's decisions for ``event``, or nothing when no routing app explains."""
    return _explainer(event) if _explainer is not None else []
