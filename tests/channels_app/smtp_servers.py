"""Real SMTP servers on loopback for the tests (aiosmtpd), and a certificate to trust.

Every server binds 127.0.0.1 on a free port (port 0) and is stopped by its fixture.
"""

import contextlib
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
USERNAME = "mailer"
PASSWORD = "Pa55-word-that-must-never-leak"


@dataclass
class Certificate:
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def make_certificate(directory: Path, name: str = "smtp-test") -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return Certificate(cert_path, key_path)


@dataclass
class Received:
    """One message a server accepted (or answered with a chosen code)."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    reply: str
    message: EmailMessage = field(init=False)

    def __post_init__(self):
        self.message = email.message_from_bytes(self.raw, policy=email.policy.default)

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


class RecordingHandler:
    """Keeps every message it receives; answers DATA with the next of ``replies`` (then 250).

    ``hold`` (a threading.Event), when set on the handler, makes DATA wait until it is set.
    """

    def __init__(self, replies=()):
        self.replies = list(replies)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.refused: set[str] = set()  # recipients answered 550 at RCPT TO

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def reply_with(self, *replies: str) -> None:
        with self.lock:
            self.replies.extend(replies)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            reply = self.replies.pop(0) if self.replies else "250 Message accepted"
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content, reply))
        return reply

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.reply.startswith("250")]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


class _LoopbackController(Controller):
    """aiosmtpd's Controller on a port the OS picks (its own start-up probe needs the port).

    ``opened`` and ``closed`` count client connections (its start-up probe's excluded)."""

    opened = closed = 0
    _ready = False

    def factory(self):
        protocol = super().factory()
        if not self._ready:
            return protocol
        self.opened += 1
        lost = protocol.connection_lost

        def connection_lost(exc):
            self.closed += 1
            lost(exc)

        protocol.connection_lost = connection_lost
        return protocol

    def start(self):
        super().start()
        self._ready = True

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A running aiosmtpd server: ``port``, ``handler.received``; ``stop()`` it."""

    def __init__(self, *, encryption="none", auth=False, certificate: Certificate | None = None,
                 replies=(), idle_timeout: float | None = None):
        self.handler = RecordingHandler(replies)
        kwargs = {} if idle_timeout is None else {"timeout": idle_timeout}
        if encryption == "starttls":
            kwargs["tls_context"] = certificate.server_context()
        elif encryption == "ssl":
            kwargs["ssl_context"] = certificate.server_context()
        if auth:
            # Over implicit TLS aiosmtpd cannot tell the session is encrypted; allow AUTH there.
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=encryption == "starttls")
        self.controller = _LoopbackController(self.handler, hostname=HOST, port=0,
                                              ready_timeout=60, **kwargs)
        self.encryption = encryption
        self.controller.start()

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def connections(self) -> int:
        """Client connections opened so far."""
        return self.controller.opened

    @property
    def open_connections(self) -> int:
        return self.controller.opened - self.controller.closed

    def stop(self):
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word."""

    def __init__(self):
        self.sock = socket.create_server((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by stop()
            self.connections.append(conn)

    def stop(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self.sock.close()
        for conn in self.connections:
            conn.close()
        self.thread.join(timeout=10)


class ClosedPort:
    """A port nothing listens on: bound (so no one else takes it) but not listening."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()
