"""A real HTTP receiver on 127.0.0.1 for the webhook tests, with scripted replies.

``Receiver(replies=[Reply(500), Reply(200)])`` answers each POST with the next reply (then
200); ``Reply(hang=True)`` never answers (until the receiver stops); ``Reply(delay=8)``
answers after 8 s. Every request is recorded (time, headers, raw body), and every TCP
connection is counted, so a test can tell that nothing at all was sent.
``Receiver(certificate=cert)`` speaks HTTPS with that certificate (``smtp_servers.Certificate``);
a client that refuses the certificate ends the handshake, and nothing is received.
"""

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0
    hang: bool = False


@dataclass
class Received:
    at: float  # time.monotonic() when the request was read
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver, certificate=None):
        self.receiver = receiver
        self.tls = certificate.server_context() if certificate is not None else None
        super().__init__((HOST, 0), _Handler)

    def handle_error(self, request, client_address):
        pass  # a client that hangs up early (a capped read, a timeout) is not news here

    def get_request(self):
        conn = super().get_request()
        with self.receiver.lock:
            self.receiver.connections += 1
        return conn

    def finish_request(self, request, client_address):
        if self.tls is not None:  # the handshake runs in the connection's own thread
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with self.receiver.lock:
                    self.receiver.handshakes_failed += 1
                return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with receiver.lock:
            receiver.received.append(Received(at=time.monotonic(), path=self.path,
                                              headers=dict(self.headers.items()), body=body))
            reply = receiver.replies.pop(0) if receiver.replies else Reply()
        if reply.hang:
            receiver.stopped.wait(120)
            return
        if reply.delay:
            receiver.stopped.wait(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        with receiver.lock:
            receiver.answered += 1


class Receiver:
    def __init__(self, replies=(), certificate=None):
        self.replies = list(replies)
        self.received: list[Received] = []
        self.connections = 0
        self.handshakes_failed = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.scheme = "https" if certificate is not None else "http"
        self._server = _Server(self, certificate)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook", *, host: str = HOST, scheme: str | None = None) -> str:
        return f"{scheme or self.scheme}://{host}:{self.port}{path}"

    def stop(self):
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
