"""The HTTP transport and its SSRF guard, against real receivers on loopback.

With the guard on (the default), every internal address class is refused when an endpoint
is saved, and a host name that resolves to loopback is refused when the request is made,
before any connection. An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, NAT64)
is judged by the IPv4 address; Teredo is refused outright. Name resolution is real except
where a test maps a name itself (DNS that changes between save and send: rebinding); the
guard is never replaced.
"""

import time
from email.utils import formatdate

import pytest

from channels_app.errors import PermanentError, TransientError
from channels_app.models import WebhookEndpoint
from channels_app.transports import http, url_guard
from channels_app.webhooks.sending import WebhookMessage
from notifications.deliveries.send import Outcome, delivery_send
from notifications.models import Delivery
from notifications.routing.route import event_route
from tests.support import api_client_for

from .webhook_servers import Reply

LIMITS = http.Limits(connect_timeout=5, read_timeout=5, max_response_bytes=64)
URL = "/api/webhook-endpoints/"

REFUSED_AT_SAVE = [
    "https://localhost/hook",
    "https://LOCALHOST./hook",
    "https://app.localhost/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:10.1.2.3]/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.10.20/hook",
    "https://[fe80::1]/hook",
    "https://10.0.0.5/hook",
    "https://172.16.3.4/hook",
    "https://192.168.1.10/hook",
    "https://100.64.0.1/hook",
    "https://[fd00::1]/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "https://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
    "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[64:ff9b:1::808:808]/hook",  # local-use NAT64
    "https://hooks.example.com:0/hook",
    "https://93.184.216.34:0/hook",
    "https://user:password@hooks.example.com/hook",
    "https://token@hooks.example.com/hook",
    "http://hooks.example.com/hook",
    "ftp://hooks.example.com/hook",
]


def test_the_guard_sorts_addresses():
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                    "2002:808:808::1", "64:ff9b::808:808"):
        assert url_guard.address_allowed(address), address
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                    "10.0.0.1", "0.0.0.0", "::", "169.254.169.254", "fe80::1", "fc00::1",
                    "ff02::1", "224.0.0.251", "255.255.255.255", "fec0::1", "100.64.0.1"):
        assert not url_guard.address_allowed(address), address


@pytest.mark.parametrize(("address", "reaches"), [
    ("2002:7f00:1::1", "127.0.0.1"),
    ("2002:a00:1:2::3", "10.0.0.1"),
    ("2002:c0a8:101::", "192.168.1.1"),
    ("2002:a9fe:a9fe::", "169.254.169.254"),
    ("2002:6440:1::", "100.64.0.1"),
    ("2002::", "0.0.0.0"),
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::a00:1", "10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
])
def test_an_ipv6_address_is_refused_when_the_ipv4_address_it_embeds_is_internal(address,
                                                                                 reaches):
    assert not url_guard.address_allowed(reaches)
    assert not url_guard.address_allowed(address), address


@pytest.mark.parametrize("address", [
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo whose server and client look public
    "2001::1",
    "64:ff9b:1::808:808",  # local-use NAT64 prefix: the operator's translator, any mapping
])
def test_teredo_and_local_use_nat64_are_refused_whatever_they_embed(address):
    assert not url_guard.address_allowed(address)


def test_port_0_is_refused_naming_the_port_even_where_private_networks_are_allowed(staff):
    response = api_client_for(staff).post(
        URL, {"name": "hook", "url": "https://hooks.example.com:0/hook"}, format="json")

    assert response.status_code == 400
    assert "port 0" in response.json()["url"][0]
    with pytest.raises(url_guard.UrlRefused, match="port 0"):
        url_guard.url_check("http://127.0.0.1:0/hook", allow_private=True)
    with pytest.raises(PermanentError, match="port 0"):
        post("https://93.184.216.34:0/hook", allow_private=False)


@pytest.mark.parametrize("url", REFUSED_AT_SAVE)
def test_saving_a_refused_url_is_a_400_naming_the_url(url, staff):
    response = api_client_for(staff).post(URL, {"name": "hook", "url": url}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["url"]
    assert not WebhookEndpoint.objects.exists()


def test_a_public_https_address_is_accepted(staff):
    response = api_client_for(staff).post(
        URL, {"name": "hook", "url": "https://93.184.216.34/hook"}, format="json")

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("address", ["127.0.0.1", "2002:7f00:1::1", "64:ff9b::a00:1"])
def test_a_name_resolving_to_an_internal_address_is_refused_at_save_time(staff, dns, address):
    dns["inside.example.test"] = address

    response = api_client_for(staff).post(
        URL, {"name": "hook", "url": "https://inside.example.test/hook"}, format="json")

    assert response.status_code == 400 and "url" in response.json()


def test_rebinding_to_loopback_after_save_is_refused_at_send_time_with_nothing_sent(
        db, staff, dns, receiver, make_workspace):
    server = receiver()
    dns["hooks.rebind.test"] = "93.184.216.34"  # public when the endpoint is saved...
    response = api_client_for(staff).post(
        URL, {"name": "hook", "url": f"https://hooks.rebind.test:{server.port}/hook",
              "secret": "s"}, format="json")
    assert response.status_code == 201, response.content
    dns["hooks.rebind.test"] = "127.0.0.1"  # ...loopback when the request is made.
    event = event_route_of(make_workspace())

    row = Delivery.objects.get(event=event, channel="webhook")
    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED

    row.refresh_from_db()
    assert row.attempts == 1 and "internal address" in row.last_error
    assert "127.0.0.1" not in row.last_error
    assert server.connections == 0 and server.received == []


def test_localhost_stored_before_the_guard_is_refused_at_send_time(db, receiver,
                                                                   make_workspace):
    server = receiver()
    WebhookEndpoint.objects.create(name="old", url=f"https://localhost:{server.port}/hook")
    event = event_route_of(make_workspace())
    row = Delivery.objects.get(event=event, channel="webhook")

    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED

    row.refresh_from_db()
    assert "internal address" in row.last_error and "127.0.0.1" not in row.last_error
    assert server.connections == 0


def event_route_of(workspace):
    from events import emit

    event = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "db"})
    event_route(event_id=event.pk)
    return event


def message(url, body=b"{}"):
    return WebhookMessage(endpoint_id=1, url=url, event_type="t", delivery_id="d", body=body)


def post(url, *, allow_private=True, limits=LIMITS):
    msg = message(url)
    return http.post(url, body=msg.body, headers=msg.headers(), limits=limits,
                     allow_private=allow_private)


def test_the_checked_address_is_connected_to_and_the_host_name_kept(receiver, dns):
    server = receiver()
    dns["pinned.example.test"] = "127.0.0.1"

    post(f"http://pinned.example.test:{server.port}/hook")

    assert server.received[0].header("Host") == f"pinned.example.test:{server.port}"


def test_one_session_keeps_the_connection_alive_between_sends(receiver):
    server = receiver()

    for _ in range(3):
        assert post(server.url()).status_code == 200

    assert len(server.received) == 3 and server.connections == 1


def test_the_answer_is_read_only_up_to_the_limit(receiver):
    server = receiver([Reply(200, body=b"x" * 100_000)])

    response = post(server.url())

    assert response.text == "x" * 64


@pytest.mark.parametrize(("reply", "error", "kind"), [
    (Reply(500), TransientError, http.SERVER_ERROR),
    (Reply(503, headers={"Retry-After": "7"}), TransientError, http.SERVER_ERROR),
    (Reply(429), TransientError, http.RATE_LIMITED),
    (Reply(404), PermanentError, http.REJECTED),
    (Reply(410), PermanentError, http.GONE),
    (Reply(301, headers={"Location": "https://example.com/"}), PermanentError, http.REDIRECT),
    (Reply(307, headers={"Location": "https://example.com/"}), PermanentError, http.REDIRECT),
])
def test_answers_are_sorted_into_transient_and_permanent(receiver, reply, error, kind):
    server = receiver([reply])

    with pytest.raises(error) as raised:
        post(server.url())

    assert raised.value.kind == kind and raised.value.code == reply.status
    assert raised.value.retry_after == (7 if reply.headers.get("Retry-After") else None)


def test_a_closed_port_is_transient(closed_port):
    with pytest.raises(TransientError) as raised:
        post(f"http://127.0.0.1:{closed_port.port}/hook")
    assert raised.value.kind == http.UNREACHABLE


def test_retry_after_accepts_seconds_and_http_dates():
    now = time.time()
    assert http.retry_after_seconds("3") == 3
    assert http.retry_after_seconds(formatdate(now + 120, usegmt=True), now=now) == \
        pytest.approx(120, abs=1)
    assert http.retry_after_seconds(formatdate(now - 60, usegmt=True), now=now) == 0
    assert http.retry_after_seconds("soon") is None and http.retry_after_seconds(None) is None


def test_with_the_guard_on_http_and_loopback_are_refused_before_connecting(receiver):
    server = receiver()

    for url in (server.url(), server.url(scheme="https")):
        with pytest.raises(PermanentError) as raised:
            post(url, allow_private=False)
        assert raised.value.kind == http.FORBIDDEN_ADDRESS
    assert server.connections == 0
