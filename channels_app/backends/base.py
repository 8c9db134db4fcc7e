"""The channel interface and the registry that finds a channel's backend by name.

A backend knows its channel, not the rows that record it. Its interface has three parts:

- ``recipients``: who receives an event routed to the channel (pure, no database: the
  caller passes the users, the rule's addresses and the active webhook endpoints).
- ``render_event`` / ``render_digest``: the message for one recipient.
- ``send``: send one rendered message; returns a ``SendResult`` or raises
  ``channels_app.errors.TransientError`` (worth retrying) / ``PermanentError``.

``notifications`` asks a backend who receives, writes the deliveries itself, and drives
each send (claim, attempt, retry). An in-app "send" is a notification row in the bell,
which only ``notifications`` can write: the in-app backend renders the row's content and is
``external = False`` (its ``send`` refuses).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

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


@dataclass(frozen=True)
class SendResult:
    """What the receiver answered to a message it accepted."""

    status_code: int | None = None  # SMTP reply code or HTTP status
    response: str = ""  # the first bytes of the answer


#: How much of a receiver's answer an attempt keeps.
RESPONSE_KEEP_CHARS = 500


class ChannelBackend:
    """One channel behind one small interface (see the module docstring)."""

    name: ClassVar[str]
    #: Whether medium, low and info wait in digest buckets for a flush on this channel.
    sends_digests: ClassVar[bool] = False
    #: Whether ``send`` reaches a receiver over the network (retried on transient errors).
    external: ClassVar[bool] = True
    #: Attempts in all before a delivery on this channel fails.
    max_attempts: ClassVar[int] = 1

    def recipients(self, *, users: Iterable[UserLike], extra_addresses: Iterable[str] = (),
                   endpoints: Iterable[Any] = (), event: Any = None) -> list[Recipient]:
        """Who receives ``event`` routed to this channel, each once, in a stable order.

        ``endpoints``: the active webhook endpoints (``EndpointTarget``), for channels
        that send to endpoints rather than people.
        """
        raise NotImplementedError

    def max_attempts_for(self, recipient: Recipient) -> int:
        """Attempts in all before a delivery to ``recipient`` fails."""
        return self.max_attempts

    def delivery_finished(self, *, recipient: Recipient, delivered: bool,
                          status_code: int | None, error: str) -> None:
        """Told once a delivery to ``recipient`` is delivered or has failed for good.

        Called inside the transaction that records it. Nothing by default.
        """

    def is_enabled(self) -> bool:
        """Whether sends may happen now; while not, deliveries wait as pending."""
        return True

    def render_event(self, *, event, title: str, recipient: Recipient, delivery_id) -> Any:
        """The message telling ``recipient`` about one ``event`` (``title`` rendered).

        ``event`` has its event type, category and workspace loaded. ``delivery_id`` is
        stable across attempts, so a receiver can drop a duplicate.
        """
        raise NotImplementedError

    def render_digest(self, *, priority: str, events: Sequence[tuple[Any, str]],
                      recipient: Recipient, delivery_id) -> Any:
        """One message listing ``events`` (pairs of event and rendered title), oldest first."""
        raise NotImplementedError

    def send(self, message: Any) -> SendResult:
        """Send one rendered message. Raises TransientError or PermanentError; never runs
        inside a database transaction (it may take up to the channel's timeout)."""
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
