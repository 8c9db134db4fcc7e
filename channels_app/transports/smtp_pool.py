"""Kept SMTP connections: a send process opens one connection and sends many messages.

Opening a connection costs a TCP handshake, a TLS handshake with STARTTLS or SSL and an
AUTH: several round trips and milliseconds of CPU, which real providers also throttle. So
each process (each thread, in a threaded server) keeps one open connection per settings
version (``SmtpConfig``, password included) and reuses it:

- at most ``Limits.max_messages`` messages per connection and ``Limits.max_idle_seconds``
  of idleness, after which it is closed politely (QUIT) and a fresh one opened;
- a connection idle longer than ``Limits.check_after_seconds`` is checked with ``NOOP``
  before it carries the next message (the messages of one batch follow each other within
  milliseconds and go straight on);
- a connection the server dropped (idle timeout, restart, a ``421``) is noticed at the
  latest at ``MAIL FROM``, before anything of the message was accepted: the message goes
  out over a fresh connection at once, not counted as a failed attempt. A connection lost
  later in the exchange is a transient failure of that message (retried by the pipeline);
- a recipient refused (``550`` at ``RCPT TO``) fails that message only: ``RSET`` and the
  connection carries the next one;
- changed settings (another host, port, encryption, account or password) close the kept
  connection and open one with the new settings for the next message;
- a forked child never uses its parent's connection, and connections are closed with
  QUIT when the process exits.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass

from channels_app.errors import DeliveryError

from .smtp import Envelope, Sent, Session, SmtpConfig, check_configured


@dataclass(frozen=True)
class Limits:
    max_messages: int = 100
    max_idle_seconds: float = 30.0
    check_after_seconds: float = 1.0


@dataclass
class _Kept:
    config: SmtpConfig
    session: Session
    last_used: float
    messages: int = 0


class Pool:
    """This process's kept connections, one per thread (``send``)."""

    def __init__(self):
        self._local = threading.local()
        self._all: list[_Kept] = []  # every thread's, closed at exit
        self._lock = threading.Lock()

    def send(self, config: SmtpConfig, envelope: Envelope, *, limits: Limits = Limits()
             ) -> Sent:
        """Send ``envelope`` over this thread's kept connection for ``config`` (opened, or
        opened again, as the module docstring says). Raises TransientError or
        PermanentError as ``smtp.send_message`` does."""
        check_configured(config)
        kept, reused = self._connection(config, limits)
        try:
            return self._send(kept, envelope)
        except _Failed as failed:
            if not (reused and failed.error.transient and failed.stage == "MAIL FROM"):
                raise failed.error from failed.error.__cause__
        # The kept connection was gone before the message started: once more, afresh.
        self._discard(kept)
        kept, _ = self._connection(config, limits)
        try:
            return self._send(kept, envelope)
        except _Failed as failed:
            raise failed.error from failed.error.__cause__

    def close(self) -> None:
        """Close this thread's connection (QUIT)."""
        kept = getattr(self._local, "kept", None)
        if kept is not None:
            self._discard(kept)

    def close_all(self) -> None:
        with self._lock:
            everything, self._all = self._all, []
        for kept in everything:
            kept.session.quit()
        self._local = threading.local()

    def forget_all(self) -> None:
        """In a forked child: drop the parent's connections without a word on them (the
        sockets are the parent's; QUIT would end its session)."""
        self._all = []
        self._local = threading.local()
        self._lock = threading.Lock()

    # --- one connection ------------------------------------------------------------------

    def _connection(self, config: SmtpConfig, limits: Limits) -> tuple[_Kept, bool]:
        kept = getattr(self._local, "kept", None)
        now = time.monotonic()
        if kept is not None and (kept.config != config or not kept.session.is_open
                                 or kept.messages >= limits.max_messages
                                 or now - kept.last_used > limits.max_idle_seconds):
            self._discard(kept)
            kept = None
        if kept is not None and now - kept.last_used > limits.check_after_seconds:
            try:
                kept.session.noop()
            except DeliveryError:
                self._discard(kept)
                kept = None
        if kept is not None:
            return kept, True
        session = Session(config).__enter__()  # raises the connection's DeliveryError
        kept = _Kept(config=config, session=session, last_used=time.monotonic())
        self._local.kept = kept
        with self._lock:
            self._all.append(kept)
        return kept, False

    def _send(self, kept: _Kept, envelope: Envelope) -> Sent:
        kept.messages += 1
        try:
            sent = kept.session.send(kept.config.from_email, envelope)
        except DeliveryError as error:
            stage = kept.session.stage
            if error.code is None:  # the connection itself failed: never reused
                self._discard(kept)
            else:  # the server refused this message: end its transaction, keep going
                try:
                    kept.session.rset()
                except DeliveryError:
                    self._discard(kept)
            raise _Failed(error, stage) from error
        finally:
            kept.last_used = time.monotonic()
        return sent

    def _discard(self, kept: _Kept) -> None:
        kept.session.quit()
        if getattr(self._local, "kept", None) is kept:
            self._local.kept = None
        with self._lock:
            if kept in self._all:
                self._all.remove(kept)


class _Failed(Exception):
    """A send's DeliveryError and the protocol step it happened at."""

    def __init__(self, error: DeliveryError, stage: str):
        super().__init__(error.detail)
        self.error, self.stage = error, stage


pool = Pool()
atexit.register(pool.close_all)
os.register_at_fork(after_in_child=pool.forget_all)
