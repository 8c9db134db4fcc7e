"""Webhook signatures: what ``sign`` produces verifies with an independent HMAC and with the
``standardwebhooks`` library; the shipped ``verify_signature`` refuses what it must."""

import base64
import hashlib
import hmac
import time

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from channels_app.webhooks import sign, verify_signature

SECRET = "s3cr3t-ünïcode"
BODY = '{"event_type":"query.query_failed","priority":"high","payload":{"q":"naïve"}}'.encode()
DELIVERY_ID = "5b7c0a35-3c55-4e0c-9a52-7c1d0b6c5a10"


def independent_datafi_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def test_both_signatures_verify_independently_and_with_standardwebhooks():
    timestamp = int(time.time())
    headers = sign(secret=SECRET, body=BODY, delivery_id=DELIVERY_ID, timestamp=timestamp)

    assert headers["webhook-id"] == DELIVERY_ID
    assert headers["webhook-timestamp"] == str(timestamp)
    t_part, v1_part = headers["X-Datafi-Signature"].split(",")
    assert t_part == f"t={timestamp}"
    assert v1_part == f"v1={independent_datafi_signature(SECRET, timestamp, BODY)}"
    expected_std = base64.b64encode(hmac.new(
        SECRET.encode(), f"{DELIVERY_ID}.{timestamp}.".encode() + BODY, hashlib.sha256
    ).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected_std}"

    receiver = Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode())
    assert receiver.verify(BODY, headers) == {
        "event_type": "query.query_failed", "priority": "high", "payload": {"q": "naïve"}}
    assert verify_signature(SECRET, BODY, headers["X-Datafi-Signature"]) is True


def test_standardwebhooks_refuses_a_tampered_body():
    headers = sign(secret=SECRET, body=BODY, delivery_id=DELIVERY_ID)
    receiver = Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode())
    try:
        receiver.verify(BODY.replace(b"high", b"info"), headers)
    except WebhookVerificationError:
        pass
    else:
        raise AssertionError("a tampered body verified")


def test_the_shipped_verifier_rejects_tampering_wrong_secrets_and_stale_or_future_times():
    now = int(time.time())
    header = sign(secret=SECRET, body=BODY, delivery_id=DELIVERY_ID,
                  timestamp=now)["X-Datafi-Signature"]

    assert verify_signature(SECRET, BODY, header) is True
    assert verify_signature(SECRET, BODY.decode(), header) is True  # str body: same bytes
    assert verify_signature(SECRET, BODY + b" ", header) is False
    assert verify_signature("another secret", BODY, header) is False
    assert verify_signature("", BODY, header) is False

    stale = sign(secret=SECRET, body=BODY, delivery_id=DELIVERY_ID,
                 timestamp=now - 360)["X-Datafi-Signature"]
    assert verify_signature(SECRET, BODY, stale) is False
    assert verify_signature(SECRET, BODY, stale, tolerance=400) is True
    future = sign(secret=SECRET, body=BODY, delivery_id=DELIVERY_ID,
                  timestamp=now + 360)["X-Datafi-Signature"]
    assert verify_signature(SECRET, BODY, future) is False


def test_the_shipped_verifier_refuses_malformed_headers_and_accepts_a_rotated_pair():
    now = int(time.time())
    good = independent_datafi_signature(SECRET, now, BODY)
    for header in ("", "t=abc,v1=" + good, f"v1={good}", f"t={now}", f"t={now},v0={good}",
                   "garbage"):
        assert verify_signature(SECRET, BODY, header) is False, header
    # Several v1 values (an old and a new secret) while a secret is rotated.
    assert verify_signature(SECRET, BODY, f"t={now},v1={'0' * 64},v1={good}") is True


def test_without_a_secret_only_the_ids_are_sent():
    headers = sign(secret="", body=BODY, delivery_id=DELIVERY_ID, timestamp=1700000000)

    assert headers == {"webhook-id": DELIVERY_ID, "webhook-timestamp": "1700000000"}
