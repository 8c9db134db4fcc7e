"""The channel interface and the registry that finds a channel's backend by name.

A backend knows its channel, not the rows that record it: ``notifications`` asks a backend
who receives an event and writes the notifications, deliveries and digests itself.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

_registry: dict[str, "ChannelBackend"] = {}


class UserLike(Protocol):
    pk: int
    email: str


@dataclass(frozen=True)
class Recipient:
    """One receiver on one channel: a user, an address, or an endpoint."""

    user_id: int | None = None
    address: str = ""
    endpoint_id: int | None = None


class ChannelBackend:
    """One channel behind one small interface.

    ``recipients`` is pure: it gets plain data (users, the rule's extra addresses) and says
    who receives, without touching the database, so routing decides what to write.
    """

    name: ClassVar[str]
    #: Whether medium, low and info wait in digest buckets for a flush on this channel.
    sends_digests: ClassVar[bool] = False

    def recipients(self, *, users: Iterable[UserLike],
                   extra_addresses: Iterable[str] = ()) -> list[Recipient]:
        """Who receives an event routed to this channel, each once, in a stable order."""
        raise NotImplementedError


def register(backend_class: type[ChannelBackend]) -> type[ChannelBackend]:
    """Install ``backend_class`` for its channel, replacing any backend of that name."""
    _registry[backend_class.name] = backend_class()
    return backend_class


def unregister(name: str) -> None:
    _registry.pop(name, None)


def get_backend(name: str) -> ChannelBackend | None:
    return _registry.get(name)


def registered_backends() -> list[ChannelBackend]:
    return list(_registry.values())
