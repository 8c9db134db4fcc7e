"""A process that may reach nothing but the services it is given: a WSGI entry point for
servers the tests hammer with generated input (tests/test_schemathesis.py).

Generated requests set SMTP hosts and webhook URLs to anything: the server's "Test
Connection", "Send Test Email" and "Send test event" then connect wherever they say. Here
every host name but ``localhost`` fails to resolve at once (no DNS query leaves the
process) and every TCP connection is refused at once, as by a closed port, except to the
``host:port`` pairs in ``DATAFI_TEST_ALLOWED_CONNECTIONS`` (comma-separated: the database).
So those operations answer their documented ``{"ok": false, ...}`` quickly and nothing is
sent anywhere. Run as ``gunicorn tests.loopback_only:application``.
"""

import errno
import ipaddress
import os
import socket

LOCAL_NAMES = {"localhost", "localhost.localdomain"}


def _normalized(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return host.lower()


def allowed_connections(text: str) -> frozenset[tuple[str, int]]:
    """``"127.0.0.1:5432,[::1]:6379"`` as a set of (address, port)."""
    pairs = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        pairs.add((_normalized(host.strip("[]")), int(port)))
    return frozenset(pairs)


def install(allowed: frozenset[tuple[str, int]]) -> None:
    """Confine this process's name resolution and TCP connections (see the module)."""
    real_getaddrinfo, real_gethostbyname = socket.getaddrinfo, socket.gethostbyname
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host is None or str(host).rstrip(".").lower() in LOCAL_NAMES:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        try:  # an address literal: no resolver is asked
            return real_getaddrinfo(host, port, family, type, proto,
                                    flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

    def gethostbyname(host):
        return getaddrinfo(host, None, socket.AF_INET)[0][4][0] and real_gethostbyname(host)

    def no_lookup(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def refused(sock, address) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False  # a Unix socket
        return (_normalized(str(address[0])), int(address[1])) not in allowed

    def connect(self, address):
        if refused(self, address):
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return real_connect(self, address)

    def connect_ex(self, address):
        if refused(self, address):
            return errno.ECONNREFUSED
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = socket.gethostbyaddr = no_lookup
    socket.getfqdn = lambda name="": "localhost"
    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex


install(allowed_connections(os.environ.get("DATAFI_TEST_ALLOWED_CONNECTIONS", "")))

from config.wsgi import application  # noqa: E402  (after the guard, which it must not bypass)

__all__ = ["application"]
