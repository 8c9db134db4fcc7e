"""The receivers bench/sends.py sends to, each in a process of its own (so a client the bench
runs as a floor and the receiver do not share an interpreter lock):

    python bench/receivers.py smtp [--cert PEM --key KEY --auth USER:PASSWORD]
    python bench/receivers.py http

``smtp`` is aiosmtpd (plain; with ``--cert``, STARTTLS offered and, with ``--auth``, AUTH
required after it); ``http`` is a bare asyncio HTTP/1.1 server that keeps connections
alive and answers every request ``200`` with an empty body. Both listen on 127.0.0.1 on a
port of the system's choosing, print ``port N`` and then answer commands on stdin, one a
line, each answered by one line:

- ``watch NAME TEXT``: from now on, count under NAME the messages whose recipients (SMTP)
  or body (HTTP) contain TEXT (no TEXT: every message); answers ``ok``;
- ``wait NAME N SECONDS``: once NAME counted N (or after SECONDS), answers
  ``COUNT FIRST NTH BYTES``: the count, the ``time.monotonic()`` (one clock for every
  process on Linux) of the first and of the N-th arrival (-1 if none), the mean size;
- ``when MARKER SECONDS``: once a message holding MARKER (``~`` letters digits ``~``, the
  first such text in a message's content or body) arrived (or after SECONDS), answers the
  ``time.monotonic()`` of its first arrival (-1 if none);
- ``stats``: answers ``CONNECTIONS MESSAGES``, counted since the start.

It ends when stdin closes. No Django here.
"""

import argparse
import asyncio
import logging
import re
import ssl
import sys
import threading
import time

MARKER = re.compile(rb"~[a-z]+[0-9]+~")


class Tally:
    """Arrivals, counted by the watches that match them."""

    def __init__(self):
        self.lock = threading.Condition()
        self.watches = {}  # name -> [needle, times, total bytes]
        self.marked = {}  # marker -> time of its first arrival
        self.connections = 0
        self.messages = 0

    def connected(self):
        with self.lock:
            self.connections += 1

    def arrived(self, haystack: bytes, content: bytes):
        now = time.monotonic()
        marker = MARKER.search(content)
        with self.lock:
            self.messages += 1
            if marker:
                self.marked.setdefault(marker.group().decode(), now)
            for watch in self.watches.values():
                if watch[0] in haystack:
                    watch[1].append(now)
                    watch[2] += len(content)
            self.lock.notify_all()

    def watch(self, name: str, needle: str):
        with self.lock:
            self.watches[name] = [needle.encode(), [], 0]

    def wait(self, name: str, count: int, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        with self.lock:
            times = self.watches[name][1]
            while len(times) < count and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)
            first = times[0] if times else -1
            nth = times[count - 1] if len(times) >= count else -1
            mean = self.watches[name][2] / len(times) if times else 0
            return f"{len(times)} {first!r} {nth!r} {mean:.0f}"

    def when(self, marker: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        with self.lock:
            while marker not in self.marked and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)
            return repr(self.marked.get(marker, -1))

    def stats(self) -> str:
        with self.lock:
            return f"{self.connections} {self.messages}"


def serve_smtp(tally: Tally, args) -> int:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            tally.arrived(" ".join(envelope.rcpt_tos).encode(),
                          envelope.original_content or envelope.content)
            return "250 Message accepted"

    class Counting(SMTP):
        def connection_made(self, transport):
            if not getattr(self, "_counted", False):  # STARTTLS calls it again
                self._counted = True
                tally.connected()
            super().connection_made(transport)

    class Loopback(Controller):
        def factory(self):
            return Counting(self.handler, **self.SMTP_kwargs)

        def _trigger_server(self):  # the port the system chose, for the start-up probe
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    # aiosmtpd logs a warning about its own deprecated attribute at every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    kwargs = {}
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        kwargs["tls_context"] = context
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(args.cert))
    controller = Loopback(Handler(), hostname="127.0.0.1", port=0, ready_timeout=60, **kwargs)
    controller.start()
    try:
        return commands(tally, controller.port)
    finally:
        controller.stop()


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def serve_http(tally: Tally, args) -> int:
    open_exchanges = {}  # task -> its writer, so the end can close them

    async def exchange(reader, writer):
        tally.connected()
        open_exchanges[asyncio.current_task()] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, keep = 0, True
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        keep = False
                body = await reader.readexactly(length) if length else b""
                tally.arrived(body, body)
                writer.write(RESPONSE)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            open_exchanges.pop(asyncio.current_task(), None)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(exchange, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    async def shutdown():
        server.close()
        exchanges = list(open_exchanges)
        for writer in open_exchanges.values():
            writer.transport.abort()  # its reader sees the end: the exchange returns
        await asyncio.gather(*exchanges, return_exceptions=True)

    try:
        return commands(tally, server.sockets[0].getsockname()[1])
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def commands(tally: Tally, port: int) -> int:
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        command, *rest = line.split(maxsplit=2)
        if command == "watch":
            tally.watch(rest[0], rest[1].strip() if len(rest) > 1 else "")
            answer = "ok"
        elif command == "wait":
            count, seconds = rest[1].split()
            answer = tally.wait(rest[0], int(count), float(seconds))
        elif command == "when":
            answer = tally.when(rest[0], float(rest[1]))
        elif command == "stats":
            answer = tally.stats()
        else:
            answer = f"unknown command {command!r}"
        print(answer, flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("smtp", "http"))
    parser.add_argument("--cert", help="PEM certificate: offer STARTTLS with it")
    parser.add_argument("--key", help="its private key")
    parser.add_argument("--auth", help="USER:PASSWORD: require AUTH")
    args = parser.parse_args()
    tally = Tally()
    return (serve_smtp if args.kind == "smtp" else serve_http)(tally, args)


if __name__ == "__main__":
    sys.exit(main())
