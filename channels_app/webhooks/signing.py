"""Webhook signatures: Datafi's ``X-Datafi-Signature`` and the Standard Webhooks headers.

Receivers verify with ``verify_signature`` (``from channels_app.webhooks import
verify_signature``) or any Standard Webhooks library given ``whsec_`` + base64 of the
secret. Both signatures are HMAC-SHA256 keyed with the secret's UTF-8 bytes:

- ``X-Datafi-Signature: t=<unix seconds>,v1=<hex HMAC(secret, "<t>.<raw body>")>``
- ``webhook-id: <delivery id>``, ``webhook-timestamp: <unix seconds>``,
  ``webhook-signature: v1,<base64 HMAC(secret, "<id>.<timestamp>.<raw body>")>``
"""

import base64
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Datafi-Signature"
DEFAULT_TOLERANCE = 300  # seconds a timestamp may be off, either way


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def sign(*, secret: str, body: bytes, delivery_id: str, timestamp: int | None = None
         ) -> dict[str, str]:
    """The identification and signature headers of one attempt.

    ``webhook-id`` and ``webhook-timestamp`` always; the two signatures when ``secret`` is
    set. ``timestamp`` defaults to now: each attempt is signed afresh.
    """
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    headers = {"webhook-id": str(delivery_id), "webhook-timestamp": str(timestamp)}
    if secret:
        body = _bytes(body)
        datafi = _hmac(secret, f"{timestamp}.".encode() + body).hex()
        standard = base64.b64encode(
            _hmac(secret, f"{delivery_id}.{timestamp}.".encode() + body)).decode()
        headers[SIGNATURE_HEADER] = f"t={timestamp},v1={datafi}"
        headers["webhook-signature"] = f"v1,{standard}"
    return headers


def verify_signature(secret: str, body: bytes | str, header: str,
                     tolerance: int = DEFAULT_TOLERANCE, *, now: float | None = None) -> bool:
    """Whether ``header`` (the ``X-Datafi-Signature`` value) signs ``body`` with ``secret``.

    ``body`` must be the raw request body, exactly as received. False for a malformed
    header, a wrong signature, or a timestamp more than ``tolerance`` seconds in the past
    or the future (a replayed or forged request). Comparison is constant-time. Several
    ``v1=`` values (sent while a secret is rotated) are each tried.
    """
    if not secret or not header:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = _hmac(secret, f"{timestamp}.".encode() + _bytes(body)).hex()
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched
