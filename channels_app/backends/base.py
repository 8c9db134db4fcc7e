from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from events.models import Event
    from notifications.models import RoutingRule

_registry: dict[str, ChannelBackend] = {}


class ChannelBackend:
    """How one channel turns a routed event into what its recipients receive.

    ``route`` runs inside the routing transaction and must only write rows (notifications,
    deliveries); anything that leaves the process happens after commit, from a task.
    ``send_digests`` is called by a flush after it claimed the bucket's pending items.
    """

    name: ClassVar[str]
    #: Whether a digest flush claims this channel's pending items and calls send_digests.
    sends_digests: ClassVar[bool] = False

    def route(self, *, event: Event, users: list, rule: RoutingRule | None, bucket: str) -> int:
        """Record what ``event`` means on this channel; ``bucket`` "" means send now.

        Returns the number of recipients reached or queued.
        """
        raise NotImplementedError

    def send_digests(self, *, bucket: str) -> int:
        """Send every claimed, unsent digest of ``bucket``; return how many were sent."""
        raise NotImplementedError


def register(backend_class: type[ChannelBackend]) -> type[ChannelBackend]:
    _registry[backend_class.name] = backend_class()
    return backend_class


def get_backend(name: str) -> ChannelBackend | None:
    _load_builtin_backends()
    return _registry.get(name)


def registered_backends() -> list[ChannelBackend]:
    _load_builtin_backends()
    return list(_registry.values())


def _load_builtin_backends() -> None:
    from . import email, in_app  # noqa: F401  (registration happens on import)
