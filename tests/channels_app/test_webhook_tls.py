"""Webhook receivers whose TLS certificate does not verify, served for real on loopback.

Each receiver presents a certificate that fails one check: self-signed, expired, not yet
valid, issued for another host name or address, or signed by a CA nobody trusts. The test
CA (``certificates.TestCA``) is trusted the way an operator would trust a private CA, with
``WEBHOOK_CA_BUNDLE``, so each failure is the one check named and nothing else. A failure
is a ``tls_failed`` TransientError saying which check failed, the test action answers 200
with it, and a delivery records it on its attempt at once (nothing is ever sent).
"""

import datetime
import subprocess
import sys

import pytest
from django.urls import reverse

from channels_app.errors import TransientError
from channels_app.services.webhooks import webhook_endpoint_save
from channels_app.transports import http
from channels_app.webhooks.sending import WebhookMessage, post
from events import emit
from notifications.deliveries.send import Outcome, delivery_send
from notifications.models import Delivery, DeliveryAttempt
from notifications.routing.route import event_route
from tests.support import ROOT, api_client_for, subprocess_env, wait_until

from .certificates import TestCA
from .smtp_servers import make_certificate

DAY = datetime.timedelta(days=1)
HOST = "127.0.0.1"
NAME = "hooks.datafi.test"  # mapped to 127.0.0.1 by the dns fixture

EXPIRED = "TLS certificate check failed: the receiver's certificate has expired"
SELF_SIGNED = "TLS certificate check failed: the receiver's certificate is self-signed"


@pytest.fixture(autouse=True)
def loopback(private_networks, dns):
    """The receivers listen on 127.0.0.1 (the guard is lifted; TLS is verified all the
    same), and NAME resolves to it."""
    dns[NAME] = HOST


@pytest.fixture
def ca(tmp_path, settings):
    """A test CA, trusted through WEBHOOK_CA_BUNDLE (and only it: certifi's CAs are not)."""
    authority = TestCA(tmp_path)
    settings.WEBHOOK_CA_BUNDLE = str(authority.cert_path)
    return authority


@pytest.fixture
def expired_receiver(ca, receiver):
    return receiver(certificate=ca.issue(names=[NAME, HOST], valid=(-10 * DAY, -DAY)))


def send(url) -> http.Response:
    """One signed POST the way a delivery makes it (the settings' CA bundle and limits)."""
    return post(WebhookMessage(endpoint_id=1, url=url, event_type="t", delivery_id="d",
                               body=b"{}", secret="s"))


def test_a_certificate_from_the_trusted_ca_is_delivered(ca, receiver):
    server = receiver(certificate=ca.issue(names=[NAME]))

    response = send(server.url(host=NAME))

    assert response.status_code == 200
    assert server.received[0].header("Host") == f"{NAME}:{server.port}"


@pytest.mark.parametrize(("names", "valid", "host", "expected"), [
    ([NAME], (-10 * DAY, -DAY), NAME, EXPIRED + "; the receiver's operator must renew it."),
    ([NAME], (DAY, 10 * DAY), NAME,
     "TLS certificate check failed: the receiver's certificate is not valid yet"),
    (["other.datafi.test"], None, NAME, "TLS certificate check failed: the receiver's "
                                        f"certificate is not valid for the host name {NAME}."),
    (["other.datafi.test"], None, HOST, "TLS certificate check failed: the receiver's "
                                        f"certificate is not valid for the host name {HOST}."),
], ids=["expired", "not-yet-valid", "wrong-host-name", "wrong-address"])
def test_a_certificate_failing_one_check_is_a_tls_failure_naming_it(
        ca, receiver, names, valid, host, expected):
    server = receiver(certificate=ca.issue(names=names, valid=valid))

    with pytest.raises(TransientError) as raised:
        send(server.url(host=host))

    assert raised.value.kind == http.TLS_FAILED == "tls_failed"
    assert raised.value.detail.startswith(expected), raised.value.detail
    assert raised.value.code is None
    assert server.received == []  # the body never went out over an unverified connection
    # The receiver saw the handshake fail (in its own thread, maybe after our error).
    wait_until(lambda: server.handshakes_failed == 1, timeout=10,
               message="the receiver saw the handshake fail")
    assert server.connections == 1


def test_a_self_signed_certificate_is_a_tls_failure_saying_so(tmp_path, receiver):
    server = receiver(certificate=make_certificate(tmp_path, name="self-signed"))

    with pytest.raises(TransientError) as raised:
        send(server.url())  # the default trust: certifi's CAs

    assert raised.value.kind == http.TLS_FAILED
    assert raised.value.detail.startswith(SELF_SIGNED), raised.value.detail
    assert "WEBHOOK_CA_BUNDLE" in raised.value.detail
    assert server.received == []


def test_a_certificate_from_an_unknown_ca_is_a_tls_failure_naming_the_issuer(
        tmp_path, ca, receiver):
    stranger = TestCA(tmp_path, name="Stranger CA")
    server = receiver(certificate=stranger.issue(names=[NAME], name="stranger"))

    with pytest.raises(TransientError) as raised:
        send(server.url(host=NAME))

    assert raised.value.kind == http.TLS_FAILED
    assert "is signed by an unknown issuer" in raised.value.detail
    assert server.received == []


def test_plain_http_behind_an_https_url_is_a_tls_failure(receiver):
    server = receiver()  # no certificate: it answers in plain HTTP

    with pytest.raises(TransientError) as raised:
        send(server.url(scheme="https"))

    assert raised.value.kind == http.TLS_FAILED
    assert "did not answer in TLS" in raised.value.detail
    assert server.received == []


def test_the_api_test_action_answers_200_with_the_tls_error(staff, expired_receiver):
    endpoint = webhook_endpoint_save(values={"name": "Ops",
                                             "url": expired_receiver.url(host=NAME)})

    response = api_client_for(staff).post(f"/api/webhook-endpoints/{endpoint.pk}/test/")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["ok"], answer["status_code"]) == (False, None)
    assert answer["error"].startswith(EXPIRED), answer["error"]
    assert expired_receiver.received == []


def test_the_admin_send_test_event_shows_the_tls_error(admin_client, expired_receiver):
    endpoint = webhook_endpoint_save(values={"name": "Ops",
                                             "url": expired_receiver.url(host=NAME)})

    response = admin_client.post(
        reverse("admin:channels_app_webhookendpoint_test", args=[endpoint.pk]), follow=True)

    assert response.status_code == 200
    html = response.content.decode().replace("&#x27;", "'")
    assert "Test event failed after" in html and EXPIRED in html


def routed_delivery(endpoint, workspace) -> Delivery:
    event = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "db"})
    event_route(event_id=event.pk)
    return Delivery.objects.get(event=event, channel="webhook", target=str(endpoint.pk))


@pytest.mark.parametrize(("max_retries", "outcome", "status"), [
    (3, Outcome.RETRYING, Delivery.Status.PENDING),
    (0, Outcome.FAILED, Delivery.Status.FAILED),
])
def test_a_delivery_records_the_tls_failure_on_its_attempt_at_once(
        expired_receiver, make_workspace, max_retries, outcome, status):
    endpoint = webhook_endpoint_save(values={"name": "Ops", "max_retries": max_retries,
                                             "url": expired_receiver.url(host=NAME)})
    row = routed_delivery(endpoint, make_workspace())

    assert delivery_send(delivery_id=row.pk) == outcome

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == (status, 1, None)
    assert row.last_error.startswith(EXPIRED)
    assert (row.next_attempt_at is not None) == (status == Delivery.Status.PENDING)
    [attempt] = DeliveryAttempt.objects.filter(delivery=row)
    assert attempt.outcome == DeliveryAttempt.Outcome.TRANSIENT
    assert attempt.error.startswith(EXPIRED) and attempt.duration_ms is not None
    assert expired_receiver.received == []


def test_a_ca_bundle_that_is_not_a_file_stops_the_start(db, tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env=subprocess_env(WEBHOOK_CA_BUNDLE=str(tmp_path / "missing.pem")))

    assert result.returncode != 0
    assert f"WEBHOOK_CA_BUNDLE: {tmp_path / 'missing.pem'} is not a file." in result.stderr
