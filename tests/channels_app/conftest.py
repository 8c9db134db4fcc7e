"""SMTP servers for the email tests (see smtp_servers.py): plain, STARTTLS, implicit TLS,
with and without AUTH, a silent one and a closed port, all on 127.0.0.1."""

import socket

import pytest

from .smtp_servers import ClosedPort, SilentServer, SmtpServer, make_certificate


def pytest_configure(config):
    # AUTH over plain SMTP and implicit TLS is tested on purpose; aiosmtpd warns about it.
    config.addinivalue_line("filterwarnings",
                            "ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate trusted only through SSL_CERT_FILE, for this test."""
    cert = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return cert


@pytest.fixture
def untrusted_certificate(tmp_path):
    """A self-signed certificate nobody trusts."""
    return make_certificate(tmp_path, name="untrusted")


@pytest.fixture
def smtp_server(certificate):
    """Start servers: ``smtp_server(encryption="starttls", auth=True, replies=["451 ..."])``."""
    servers = []

    def start(*, encryption="none", auth=False, replies=(), certificate=certificate,
              idle_timeout=None):
        server = SmtpServer(encryption=encryption, auth=auth, certificate=certificate,
                            replies=replies, idle_timeout=idle_timeout)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def closed_port():
    port = ClosedPort()
    yield port
    port.stop()


# --- webhook receivers (see webhook_servers.py) -----------------------------------------------

@pytest.fixture
def dns(monkeypatch):
    """Map names to addresses for this test (every other name resolves as usual)."""
    names = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def private_networks(settings):
    """Webhooks may reach loopback and plain http (the receivers in these tests)."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def receiver():
    """Start receivers: ``receiver(replies=[Reply(500), Reply(200)])``, over HTTPS with
    ``certificate=``; all stop after."""
    from .webhook_servers import Receiver

    started = []

    def start(replies=(), certificate=None):
        server = Receiver(replies, certificate)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
