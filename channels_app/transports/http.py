"""HTTP transport: POST one body to one URL. Knows nothing of models or deliveries.

- The SSRF guard (``url_guard``): a URL must be ``https`` without credentials, and the
  host's every address must be public. Addresses are checked when the connection is made,
  and the socket is connected to the very address that was checked
  (``GuardedHTTPSConnection``), so a name that resolves to a public address at save time
  and to an internal one later (DNS rebinding) is refused at send time. TLS still verifies
  the certificate for the host name (SNI and ``Host`` are the name, not the address),
  against ``ca_bundle`` when given, else certifi's bundle (requests' default; the
  environment's ``REQUESTS_CA_BUNDLE`` is ignored with the rest of it).
  ``allow_private=True`` (the setting ``WEBHOOK_ALLOW_PRIVATE_NETWORKS``, for local
  development and tests only) lifts the guard and allows ``http``.
- One ``requests.Session`` per process (keep-alive), environment proxies ignored, connect
  and read timeouts, redirects never followed, at most ``max_response_bytes`` of an answer
  read.
- Outcomes: 2xx returns a ``Response``; network errors, timeouts, 429 and 5xx raise
  ``TransientError`` (with ``retry_after`` from a ``Retry-After`` header); a certificate
  that does not verify or a failed handshake raises ``TransientError(kind="tls_failed")``
  saying which check failed (see ``tls_failure``); 3xx and other 4xx raise
  ``PermanentError`` (410 with ``kind="gone"``); a refused address raises
  ``PermanentError(kind="forbidden_address")`` whose text never names the address.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from channels_app.errors import PermanentError, TransientError

from .url_guard import REFUSED_ADDRESS, UrlRefused, address_allowed, resolve_host, url_check

# The kinds of failure a send or a test reports.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
FORBIDDEN_ADDRESS = "forbidden_address"
REDIRECT = "redirect"
REJECTED = "rejected"
GONE = "gone"
SERVER_ERROR = "server_error"
RATE_LIMITED = "rate_limited"
TLS_FAILED = "tls_failed"


class _GuardRefused(NewConnectionError):
    """Raised inside urllib3 when the guard refuses every address of a host."""


class _GuardedMixin:
    """Resolve the host, check every address, connect to a checked one (no second lookup)."""

    allow_private = False

    def _new_conn(self) -> socket.socket:
        try:
            addresses = resolve_host(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        if not self.allow_private and not all(address_allowed(a) for _, a in addresses):
            raise _GuardRefused(self, REFUSED_ADDRESS)
        error = None
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not None:
                    sock.settimeout(self.timeout)
                sock.connect((address, self.port))
                return sock
            except TimeoutError as exc:
                sock.close()
                error = ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout="
                          f"{self.timeout})")
                error.__cause__ = exc
            except OSError as exc:
                sock.close()
                error = NewConnectionError(self, f"Failed to establish a new connection: "
                                                 f"{exc.strerror or exc}")
        raise error


class GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _PrivateHTTPConnection(GuardedHTTPConnection):
    allow_private = True


class _PrivateHTTPSConnection(GuardedHTTPSConnection):
    allow_private = True


def _pool(base, connection_class):
    return type(f"Guarded{base.__name__}", (base,), {"ConnectionCls": connection_class})


_POOLS = {
    False: {"http": _pool(HTTPConnectionPool, GuardedHTTPConnection),
            "https": _pool(HTTPSConnectionPool, GuardedHTTPSConnection)},
    True: {"http": _pool(HTTPConnectionPool, _PrivateHTTPConnection),
           "https": _pool(HTTPSConnectionPool, _PrivateHTTPSConnection)},
}


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go through the guard."""

    def __init__(self, *, allow_private: bool, **kwargs):
        self.allow_private = allow_private
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS[self.allow_private]

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise requests.exceptions.InvalidProxyURL("webhooks are never sent through a proxy")


# --- one session per process ----------------------------------------------------------------

_sessions: dict[tuple[int, bool], requests.Session] = {}
_sessions_lock = threading.Lock()


def session(*, allow_private: bool) -> requests.Session:
    """This process's session (kept alive between sends); a forked child makes its own."""
    key = (os.getpid(), allow_private)
    with _sessions_lock:
        current = _sessions.get(key)
        if current is None:
            current = requests.Session()
            current.trust_env = False  # no proxies or .netrc from the environment
            adapter = GuardedAdapter(allow_private=allow_private, max_retries=0)
            current.mount("https://", adapter)
            current.mount("http://", adapter)
            _sessions[key] = current
    return current


# --- sending --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    """A 2xx answer."""

    status_code: int
    text: str  # the first ``max_response_bytes`` of the body, decoded leniently
    duration_ms: int


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 5
    read_timeout: float = 10
    max_response_bytes: int = 4096


def post(url: str, *, body: bytes, headers: dict[str, str], limits: Limits,
         allow_private: bool, ca_bundle: str | None = None) -> Response:
    """POST ``body`` to ``url`` once; see the module docstring for what it raises.

    ``ca_bundle``: a PEM file of the CAs a receiver's certificate may chain to (None:
    certifi's bundle).
    """
    try:
        url_check(url, allow_private=allow_private, resolve=False)
    except UrlRefused as exc:
        raise PermanentError(str(exc), kind=FORBIDDEN_ADDRESS) from None
    started = time.monotonic()
    deadline = started + limits.connect_timeout + limits.read_timeout
    try:
        answer = session(allow_private=allow_private).post(
            url, data=body, headers=headers, allow_redirects=False, stream=True,
            timeout=(limits.connect_timeout, limits.read_timeout), verify=ca_bundle or True)
    except requests.exceptions.RequestException as exc:
        raise _request_failure(exc, url=url, limits=limits) from None
    try:
        text = _read_capped(answer, limits.max_response_bytes, deadline)
    except (requests.exceptions.RequestException, OSError):
        text = ""  # the status is what counts; a broken body after it does not
    finally:
        answer.close()
    duration_ms = round((time.monotonic() - started) * 1000)
    return _classify(answer, text, duration_ms)


def _request_failure(exc: requests.exceptions.RequestException, *, url: str,
                     limits: Limits) -> PermanentError | TransientError:
    """The error a request that got no answer means (nothing was received, or not all)."""
    if _cause_of(exc, _GuardRefused):
        return PermanentError(REFUSED_ADDRESS, kind=FORBIDDEN_ADDRESS)
    tls = tls_failure(exc, host=urlsplit(url).hostname or "")
    if tls:
        return TransientError(tls, kind=TLS_FAILED)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError(f"No connection within {limits.connect_timeout:g} s.",
                              kind=TIMEOUT)
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientError(f"No answer within {limits.read_timeout:g} s.", kind=TIMEOUT)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return TransientError(f"Cannot connect: {_reason(exc)}", kind=UNREACHABLE)
    return TransientError(f"The request failed: {_reason(exc)}", kind=UNREACHABLE)


def _classify(answer: requests.Response, text: str, duration_ms: int) -> Response:
    code = answer.status_code
    excerpt = f" {text[:200]}" if text else ""
    if 200 <= code < 300:
        return Response(status_code=code, text=text, duration_ms=duration_ms)
    if 300 <= code < 400:
        raise PermanentError(f"HTTP {code}: redirects are not followed; register the final "
                             "URL.", kind=REDIRECT, code=code)
    if code == 429 or code >= 500:
        kind = RATE_LIMITED if code == 429 else SERVER_ERROR
        raise TransientError(f"HTTP {code}{excerpt}", kind=kind, code=code,
                             retry_after=retry_after_seconds(answer.headers.get("Retry-After")))
    if code == 410:
        raise PermanentError(f"HTTP 410 Gone: the receiver says this endpoint no longer "
                             f"exists.{excerpt}", kind=GONE, code=code)
    raise PermanentError(f"HTTP {code}{excerpt}", kind=REJECTED, code=code)


def _read_capped(answer: requests.Response, limit: int, deadline: float) -> str:
    chunks, size = [], 0
    for chunk in answer.iter_content(chunk_size=1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit or time.monotonic() > deadline:
            break
    return b"".join(chunks)[:limit].decode("utf-8", errors="replace")


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _cause_of(exc: BaseException, kind: type) -> BaseException | None:
    """The first exception of type ``kind`` in ``exc`` or what it wraps, or None.

    Follows ``__cause__``, ``__context__``, exception ``args`` and urllib3's ``reason``,
    only through exceptions: a ``reason`` or an arg may be a plain string (``ssl.SSLError``
    keeps OpenSSL's reason code there).
    """
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        linked = (current.__cause__, current.__context__, *current.args,
                  getattr(current, "reason", None))
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return None


# OpenSSL's X509_V_ERR_* codes, by the check that failed.
_EXPIRED = {9: "is not valid yet (its start date is in the future; check the receiver's "
               "clock too)",
            10: "has expired; the receiver's operator must renew it"}
_UNKNOWN_ISSUER = ("is signed by an unknown issuer (not a trusted CA, or the receiver sends "
                   "an incomplete chain)")
_UNTRUSTED = {18: "is self-signed, which no trusted CA vouches for",
              19: "chains to a self-signed root that is not a trusted CA",
              2: _UNKNOWN_ISSUER, 20: _UNKNOWN_ISSUER, 21: _UNKNOWN_ISSUER}
_WRONG_HOST = (62, 64)  # host name mismatch, IP address mismatch


def tls_failure(exc: BaseException, *, host: str) -> str:
    """Which TLS check a failed request failed, as a sentence; "" when TLS was not the cause.

    A certificate problem is a ``TransientError``, retried with the usual backoff: the
    certificate belongs to the receiver, and what goes wrong with one (a renewal that did
    not run, a certificate deployed for another name or with half its chain, a proxy
    switched to a self-signed default) is nearly always an operational slip that its
    operator fixes within hours, not a sign that the endpoint is gone: the kind of gap
    a webhook sender's retries are there to bridge. Nothing is ever sent over a connection
    that did not verify, a delivery still failing after the endpoint's retries fails, and
    its failures count toward deactivating the endpoint like any others. (The SMTP
    transport calls a TLS failure permanent instead: that server is ours to configure, and
    Test Connection shows the problem at once.)
    """
    error = _cause_of(exc, ssl.SSLCertVerificationError)
    if error is not None:
        code = error.verify_code
        if code in _WRONG_HOST:
            what = f"is not valid for the host name {host}"
        else:
            what = (_EXPIRED.get(code) or _UNTRUSTED.get(code)
                    or f"did not verify: {error.verify_message}")
        advice = ("; if the receiver uses a private CA on purpose, add that CA to "
                  "WEBHOOK_CA_BUNDLE" if code in _UNTRUSTED else "")
        return f"TLS certificate check failed: the receiver's certificate {what}{advice}."
    error = _cause_of(exc, ssl.SSLError)
    if error is not None:
        if error.reason == "WRONG_VERSION_NUMBER":
            return ("The TLS handshake failed: the receiver did not answer in TLS (is the "
                    "port serving plain HTTP?).")
        return f"The TLS handshake failed: {error.reason or error}."
    return ""


def _reason(exc: BaseException) -> str:
    """A short reason, without the URL's query (which might carry a token)."""
    for kind, text in ((NameResolutionError, "the host name does not resolve"),
                       (ConnectTimeoutError, "timed out")):
        if _cause_of(exc, kind):
            return text
    message = str(exc)
    if "Connection refused" in message:
        return "connection refused"
    if "Connection reset" in message or "RemoteDisconnected" in message:
        return "the connection was closed without an answer"
    return type(exc).__name__
