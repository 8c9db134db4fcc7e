"""The channel interface and the registry that finds a channel's backend by name.

A channel is one module with one backend class that says everything about it: its name
and label, the queues its sends use, whether users choose it per category, how it finds
its targets in an event's audience, which settings it needs before it may send, and how
it renders and sends. The rest of the code asks the registry; it never compares channel
names. A Django app adds a channel by registering its backend in ``AppConfig.ready()``
(README, "Adding a channel"); nothing else changes.

Two kinds of channel:

- **external** (email, webhooks): routing and flushes write a delivery per target; the
  delivery pipeline (``notifications.deliveries``) claims each one after the transaction
  commits and sends it with ``render_event`` / ``render_digest`` and ``send``, retrying
  transient errors and recording every attempt.
- **in-process** (``external = False``; the in-app bell): the backend writes its own rows in
  the routing transaction (``write_now``) and in the flush that claims its digests
  (``write_digests``), which is what makes it exactly-once without a task.

A delivery stores what the backend needs to address its target as data: ``target`` (a
string, e.g. an address or an endpoint id) and ``target_data`` (JSON, optional), with the
audience member it is for (``user_id``, empty for a distribution list or an endpoint).
Digests group a bucket's items by ``(channel, target)``.
"""

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from core.errors import ApplicationError

_registry: dict[str, "ChannelBackend"] = {}


@dataclass(frozen=True)
class Recipient:
    """One receiver on one channel: the backend's target, and the member it is for."""

    target: str
    user_id: int | None = None
    target_data: dict | None = None

    @property
    def key(self) -> tuple:
        return (self.user_id, self.target)


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
    label: ClassVar[str]
    #: Whether users switch this channel on or off per category (preferences page and API).
    user_choosable: ClassVar[bool] = False
    #: Whether a message on this channel interrupts a person (an email, a phone's chime):
    #: quiet hours hold such messages until they end; the bell, read when one looks, not.
    interrupts: ClassVar[bool] = False
    #: Whether medium, low and info wait in digest buckets on this channel (unless an admin
    #: switches its digests off).
    sends_digests: ClassVar[bool] = True
    #: Whether the delivery pipeline sends this channel's deliveries over the network.
    external: ClassVar[bool] = True
    #: The queue of immediate sends of critical and high events, and the queue of every
    #: other send (digests, batched priorities sent at once): two lanes, so a backlog of
    #: the second never delays the first. Both must be control-plane queues.
    queue: ClassVar[str] = "deliveries"
    batched_queue: ClassVar[str] = "digests"
    #: The queue of a large audience's immediate sends (more than ``DATAFI_SEND_BATCH`` of
    #: one event), sent in lanes of batches: a third lane, so a fan-out to thousands never
    #: delays the next critical event's send on ``queue``. A control-plane queue.
    bulk_queue: ClassVar[str] = "bulk"
    #: Columns of the user model this channel reads of each audience member (e.g.
    #: ``("email",)``); routing loads them with the audience, in the same query.
    user_fields: ClassVar[tuple[str, ...]] = ()
    #: Attempts in all before a delivery on this channel fails.
    max_attempts: ClassVar[int] = 1

    # --- routing --------------------------------------------------------------------------

    def load_config(self) -> Any:
        """What ``targets`` needs beyond the event and its audience (e.g. the active webhook
        endpoints), read once and cached by routing until the routing configuration
        changes (``notifications.routing.rules``). None by default."""
        return None

    def targets(self, *, event, members: Sequence, rule, config) -> list[Recipient]:
        """Who receives ``event`` routed to this channel, each once, in a stable order.

        ``members``: the audience, each with ``pk`` and this backend's ``user_fields``;
        ``rule``: the routing rule that chose the channels (None for the priority
        default), for options of its own (e.g. ``extra_emails``); ``config``: what
        ``load_config`` returned. Pure: no database access.
        """
        raise NotImplementedError

    # --- settings -------------------------------------------------------------------------

    def configuration_problems(self) -> list[str]:
        """What keeps this channel from sending now, in words (empty: ready). While there
        is any, its deliveries wait as pending and are sent once it is resolved."""
        return []

    # --- the delivery log -----------------------------------------------------------------

    def describe_target(self, target: str, target_data: dict | None) -> str:
        """How the delivery log shows a target."""
        return target

    def target_fields(self, target: str, target_data: dict | None) -> dict:
        """The channel's own fields of a delivery in the REST API (e.g. ``address``)."""
        return {}

    # --- sending (external channels) ------------------------------------------------------

    def max_attempts_for(self, recipient: Recipient) -> int:
        """Attempts in all before a delivery to ``recipient`` fails."""
        return self.max_attempts

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

    def resolution_targets(self, recipients: list[Recipient], *, asked: bool
                           ) -> list[Recipient]:
        """Which of ``recipients`` (targets that got an event, now resolved) are told so with
        ``render_resolution``; ``asked``: the event's routing rule asks for follow-ups
        (``notify_resolved``). None by default."""
        return []

    def render_resolution(self, *, event, title: str, recipient: Recipient,
                          delivery_id) -> Any | None:
        """The message telling ``recipient`` (one of ``resolution_targets``) that ``event`` is
        resolved, or None when there is nothing to tell any more (the delivery is then
        cancelled, saying so)."""
        return None

    def batch_begin(self) -> None:
        """Called before each batch of sends on this channel (a single send is a batch of
        one), in the thread that then renders and sends it: read once what the batch's sends
        share (the email settings, a webhook endpoint). Nothing by default."""

    def batch_end(self) -> None:
        """Called after each batch, however it ended: forget what ``batch_begin`` read, so
        nothing outside a batch uses it. Nothing by default."""

    @contextmanager
    def batch(self):
        """A batch of sends on this channel: ``batch_begin``, then ``batch_end`` however
        it ends. The pipeline checks ``configuration_problems`` inside it, so a backend may
        answer from what the batch read."""
        self.batch_begin()
        try:
            yield self
        finally:
            self.batch_end()

    def send(self, message: Any) -> SendResult:
        """Send one rendered message. Raises ``TransientError`` or ``PermanentError``; never
        runs inside a database transaction (it may take up to the channel's timeout)."""
        raise NotImplementedError

    def delivery_finished(self, *, recipient: Recipient, delivered: bool,
                          status_code: int | None, error: str) -> None:
        """Told once a delivery to ``recipient`` is delivered or has failed for good, inside
        the transaction that records it. Nothing by default."""

    # --- in-process channels ----------------------------------------------------------------

    def write_now(self, routes: Iterable) -> None:
        """Write the rows of immediate routes (``notifications.routing.ChannelRoute``, with
        the recipients to deliver to), inside the routing transaction."""
        raise NotImplementedError

    def write_digests(self, *, bucket: str) -> int:
        """Write this channel's digests claimed in ``bucket``; returns how many were sent."""
        raise NotImplementedError


def register(backend_class: type[ChannelBackend]) -> type[ChannelBackend]:
    """Install ``backend_class`` for its channel, replacing any backend of that name.

    Usable as a class decorator. Refuses a backend that lacks a name or a label.
    """
    for attribute in ("name", "label"):
        if not getattr(backend_class, attribute, ""):
            raise ValueError(f"{backend_class.__name__} needs a {attribute}")
    _registry[backend_class.name] = backend_class()
    return backend_class


def unregister(name: str) -> None:
    _registry.pop(name, None)


def get_backend(name: str) -> ChannelBackend | None:
    return _registry.get(name)


def registered_backends() -> list[ChannelBackend]:
    return list(_registry.values())


def channel_names() -> list[str]:
    """Every registered channel's name, in registration order."""
    return list(_registry)


def user_choosable_backends() -> list[ChannelBackend]:
    return [backend for backend in _registry.values() if backend.user_choosable]


def member_fields() -> tuple[str, ...]:
    """The user columns any registered channel reads of audience members, sorted."""
    return tuple(sorted({f for backend in _registry.values() for f in backend.user_fields}))


class ChannelListError(ApplicationError):
    """A list of channels was refused; ``index`` is the offending item's, when one is."""

    field = "channels"

    def __init__(self, message: str, *, index: int | None = None):
        super().__init__(message)
        self.index = index


def check_channel_list(value, *, names: Iterable[str] | None = None) -> list[str]:
    """``value`` as a list of channel names: at least one, each registered (or in
    ``names``), none twice. Raises ``ChannelListError``. The one check of a channel list:
    routing rules, routing files, escalations."""
    known = list(channel_names() if names is None else names)
    if not isinstance(value, list):
        raise ChannelListError("Give a list of channels, e.g. [in_app, email].")
    if not value:
        raise ChannelListError("Choose at least one channel.")
    for index, channel in enumerate(value):
        if channel not in known:
            shown = channel if isinstance(channel, str) and len(channel) <= 40 else "…"
            raise ChannelListError(
                f"Unknown channel {shown!r}; choose from {', '.join(known)}.", index=index)
        if channel in value[:index]:
            raise ChannelListError("A channel is listed twice.", index=index)
    return list(value)


def check_channel(value, *, field: str = "channel") -> "ChannelBackend":
    """The backend of the channel named ``value``; raises ``ApplicationError`` naming
    ``field`` for one that is not registered."""
    backend = _registry.get(value) if isinstance(value, str) else None
    if backend is None:
        raise ApplicationError(
            f"Unknown channel {value!r}; choose from {', '.join(channel_names())}.", field=field)
    return backend
