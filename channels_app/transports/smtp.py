"""SMTP transport: test a server, send one message. Knows nothing of models or deliveries.

Certificates are always verified against the system trust store
(``ssl.create_default_context()``, which honours ``SSL_CERT_FILE``). The whole exchange of
one call stays within ``config.timeout`` seconds.
"""

from __future__ import annotations

import copy
import functools
import os
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses

from channels_app.errors import DeliveryError, PermanentError, TransientError

STARTTLS, SSL, NONE = "starttls", "ssl", "none"
ENCRYPTIONS = (STARTTLS, SSL, NONE)

# The kinds of failure Test Connection reports (``{"ok": false, "error": KIND}``).
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
TLS_FAILED = "tls_failed"
STARTTLS_UNSUPPORTED = "starttls_unsupported"
AUTH_FAILED = "auth_failed"
REJECTED = "rejected"
NOT_CONFIGURED = "not_configured"
ERROR_KINDS = (UNREACHABLE, TIMEOUT, TLS_FAILED, STARTTLS_UNSUPPORTED, AUTH_FAILED, REJECTED,
               NOT_CONFIGURED)


@dataclass(frozen=True)
class SmtpConfig:
    """Everything needed to reach one SMTP server; ``password`` is never shown by repr."""

    host: str
    port: int
    encryption: str = STARTTLS
    username: str = ""
    password: str = field(default="", repr=False)
    from_email: str = ""
    from_name: str = ""
    timeout: float = 10

    @property
    def missing(self) -> tuple[str, ...]:
        """The settings nothing can be sent without (``REQUIRED``) that are empty here; a
        host or address of only spaces is empty. The one definition of "configured"."""
        return tuple(name for name in REQUIRED if not _given(getattr(self, name)))

    @property
    def is_configured(self) -> bool:
        return not self.missing


#: The SmtpConfig attributes a server cannot be used without.
REQUIRED = ("host", "port", "from_email")


def _given(value) -> bool:
    return bool(value.strip() if isinstance(value, str) else value)


@dataclass(frozen=True)
class Result:
    """What Test Connection and Send Test Email answer."""

    ok: bool
    error: str = ""
    detail: str = ""

    @classmethod
    def from_error(cls, error: DeliveryError) -> Result:
        return cls(ok=False, error=error.kind, detail=error.detail)

    def as_dict(self) -> dict:
        return {"ok": True} if self.ok else {"ok": False, "error": self.error,
                                             "detail": self.detail}


@dataclass(frozen=True)
class Sent:
    """The server's final reply to a message it accepted."""

    code: int
    text: str
    message_id: str


def test_connection(config: SmtpConfig) -> Result:
    """Connect, EHLO, STARTTLS if chosen, AUTH if a username is set; then QUIT.

    Never raises for a server problem: the answer says which kind of failure it was.
    """
    if not config.is_configured:
        return Result(ok=False, error=NOT_CONFIGURED,
                      detail="Email is not configured: set a host, a port and a from address.")
    try:
        with Session(config):
            pass
    except DeliveryError as error:
        return Result.from_error(error)
    return Result(ok=True)


@dataclass(frozen=True)
class Envelope:
    """A message as it goes over the wire: its recipients and its bytes."""

    recipients: tuple[str, ...]
    data: bytes = field(repr=False)
    message_id: str = ""


def envelope_of(message: EmailMessage | Envelope) -> Envelope:
    """``message`` ready for the wire: recipients from its To, Cc and Bcc headers (Bcc is
    not sent; ``message`` itself is left as it is, so a retry can send it again).

    Raises PermanentError for a message without a recipient or that cannot be encoded.
    """
    if isinstance(message, Envelope):
        return message
    recipients = tuple(addr for _, addr in getaddresses(
        message.get_all("To", []) + message.get_all("Cc", []) + message.get_all("Bcc", []))
        if addr)
    if not recipients:
        raise PermanentError("The message has no recipient.", kind=REJECTED)
    if message["Bcc"] is not None:  # recipients, but not a header anyone receives
        message = copy.deepcopy(message)
        del message["Bcc"]
    try:
        # The message's own policy (channels_app.emails.MAIL_POLICY: CRLF, 7-bit headers).
        data = message.as_bytes()
    except (ValueError, UnicodeError) as exc:
        raise PermanentError(f"The message cannot be encoded for SMTP: {exc}",
                             kind=REJECTED) from None
    return Envelope(recipients=recipients, data=data, message_id=message["Message-ID"] or "")


def send_message(config: SmtpConfig, message: EmailMessage | Envelope) -> Sent:
    """Send ``message`` over a connection of its own, opened and closed here (Send Test
    Email; the delivery pipeline keeps its connections: ``smtp_pool``).

    The envelope sender is ``config.from_email``. Returns the server's reply to the data;
    raises TransientError (connection refused or reset, timeout, SMTP 4xx) or PermanentError
    (SMTP 5xx, authentication failure, TLS failure, a message that cannot be sent).
    """
    check_configured(config)
    envelope = envelope_of(message)
    with Session(config) as session:
        return session.send(config.from_email, envelope)


def check_configured(config: SmtpConfig) -> None:
    if not config.is_configured:
        raise PermanentError("Email is not configured: set a host, a port and a from address.",
                             kind=NOT_CONFIGURED)


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    return ssl.create_default_context()


def tls_context() -> ssl.SSLContext:
    """The system trust store's context, built once per process (loading the store costs
    milliseconds of CPU); built again if ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` changes."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


class Session:
    """One SMTP connection, opened, secured and authenticated on enter, closed on exit.

    Each call (opening, ``send``, ``noop``, ``rset``) has ``config.timeout`` seconds in all.
    ``stage`` is the protocol step under way or last done.
    """

    def __init__(self, config: SmtpConfig):
        self.config = config
        self.deadline = time.monotonic() + config.timeout
        self.smtp: smtplib.SMTP | None = None
        self.stage = ""

    def __enter__(self) -> Session:
        config = self.config
        context = tls_context()
        try:
            with self._step("connect"):
                if config.encryption == SSL:
                    self.smtp = smtplib.SMTP_SSL(config.host, config.port, context=context,
                                                 timeout=config.timeout)
                else:
                    self.smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            with self._step("EHLO"):
                self._check(self.smtp.ehlo(), "EHLO")
            if config.encryption == STARTTLS:
                if not self.smtp.has_extn("starttls"):
                    raise PermanentError(
                        f"{config.host}:{config.port} does not offer STARTTLS; choose SSL/TLS "
                        "if the port expects TLS from the start, or no encryption.",
                        kind=STARTTLS_UNSUPPORTED)
                with self._step("STARTTLS"):
                    self._check(self.smtp.starttls(context=context), "STARTTLS")
                    self._check(self.smtp.ehlo(), "EHLO")
            if config.username:
                with self._step("AUTH"):
                    self.smtp.login(config.username, config.password)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        if exc_info[0] is None and self.smtp is not None:
            try:
                self._arm()
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass  # the work is done; a rude goodbye changes nothing
        self.close()

    def close(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    @property
    def is_open(self) -> bool:
        return self.smtp is not None

    def send(self, sender: str, envelope: Envelope) -> Sent:
        self.deadline = time.monotonic() + self.config.timeout
        smtp = self.smtp
        with self._step("MAIL FROM"):
            self._check(smtp.mail(sender), "MAIL FROM")
        for recipient in envelope.recipients:
            with self._step("RCPT TO"):
                self._check(smtp.rcpt(recipient), f"RCPT TO <{recipient}>")
        with self._step("DATA"):
            try:
                code, text = smtp.data(envelope.data)
            except smtplib.SMTPDataError as exc:  # the DATA command itself was refused
                code, text = exc.smtp_code, exc.smtp_error
            self._check((code, text), "DATA")
        return Sent(code=code, text=_text(text), message_id=envelope.message_id)

    def noop(self) -> None:
        """A cheap round trip: raises a DeliveryError if the connection is no longer usable."""
        self.deadline = time.monotonic() + self.config.timeout
        with self._step("NOOP"):
            self._check(self.smtp.noop(), "NOOP")

    def rset(self) -> None:
        """End a refused transaction so the connection can carry the next message."""
        self.deadline = time.monotonic() + self.config.timeout
        with self._step("RSET"):
            self._check(self.smtp.rset(), "RSET")

    def quit(self) -> None:
        """Say goodbye and close; a rude goodbye changes nothing."""
        if self.smtp is not None:
            try:
                self.deadline = time.monotonic() + min(self.config.timeout, 2)
                self._arm()
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
        self.close()

    def _check(self, reply: tuple[int, bytes | str], command: str) -> None:
        code, text = reply
        if 200 <= code < 400:
            return
        error_class = TransientError if 400 <= code < 500 else PermanentError
        raise error_class(f"The server answered {command} with {code} {_text(text)}",
                          kind=REJECTED, code=code)

    def _arm(self) -> None:
        """Give the next socket operation only what is left of the overall timeout."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if self.smtp is not None and self.smtp.sock is not None:
            self.smtp.sock.settimeout(remaining)

    def _step(self, what: str) -> _Step:
        return _Step(self, what)


class _Step:
    """Runs one protocol step within the deadline and turns its failure into a DeliveryError."""

    def __init__(self, session: Session, what: str):
        self.session = session
        self.what = what

    def __enter__(self):
        self.session.stage = self.what
        try:
            self.session._arm()
        except TimeoutError:
            raise self._timeout() from None

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, DeliveryError):
            return False
        error = self._translate(exc)
        if error is None:
            return False
        raise error from exc

    def _timeout(self) -> TransientError:
        config = self.session.config
        return TransientError(
            f"{config.host}:{config.port} did not answer {self.what} within "
            f"{config.timeout:g} seconds.", kind=TIMEOUT)

    def _translate(self, exc: BaseException) -> DeliveryError | None:
        config = self.session.config
        where = f"{config.host}:{config.port}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return PermanentError(
                f"{where} refused the username or password ({exc.smtp_code} "
                f"{_text(exc.smtp_error)}).", kind=AUTH_FAILED, code=exc.smtp_code)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return PermanentError(f"{where} does not support {self.what}: {exc}",
                                  kind=AUTH_FAILED if self.what == "AUTH" else REJECTED)
        if isinstance(exc, smtplib.SMTPException) and self.what == "AUTH" and "AUTH" in str(exc):
            return PermanentError(f"{where} cannot authenticate: {exc}", kind=AUTH_FAILED)
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
                exc.__context__, TimeoutError):  # smtplib reports a read timeout this way
            return self._timeout()
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return TransientError(f"{where} closed the connection during {self.what}.",
                                  kind=UNREACHABLE)
        if isinstance(exc, smtplib.SMTPResponseException):
            error_class = TransientError if 400 <= exc.smtp_code < 500 else PermanentError
            return error_class(f"{where} answered {self.what} with {exc.smtp_code} "
                               f"{_text(exc.smtp_error)}", kind=REJECTED, code=exc.smtp_code)
        if isinstance(exc, smtplib.SMTPException):
            return PermanentError(f"{where} failed during {self.what}: {exc}", kind=REJECTED)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return PermanentError(
                f"The TLS certificate of {where} is not trusted: {exc.verify_message}. "
                "Install its CA in the system trust store (or point SSL_CERT_FILE at it).",
                kind=TLS_FAILED)
        if isinstance(exc, ssl.SSLError):
            return PermanentError(f"The TLS handshake with {where} failed: {exc.reason or exc}.",
                                  kind=TLS_FAILED)
        if isinstance(exc, TimeoutError):
            return self._timeout()
        if isinstance(exc, socket.gaierror):
            return TransientError(f"The host {config.host} cannot be resolved: {exc.strerror}.",
                                  kind=UNREACHABLE)
        if isinstance(exc, UnicodeError):  # a host name IDNA cannot encode (a label too long)
            return PermanentError(f"The host {config.host[:100]} is not a valid host name.",
                                  kind=UNREACHABLE)
        if isinstance(exc, ConnectionRefusedError):
            return TransientError(f"{where} refused the connection: nothing listens there.",
                                  kind=UNREACHABLE)
        if isinstance(exc, OSError):
            return TransientError(f"{where} cannot be reached during {self.what}: "
                                  f"{exc.strerror or exc}.", kind=UNREACHABLE)
        return None


def _text(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())
