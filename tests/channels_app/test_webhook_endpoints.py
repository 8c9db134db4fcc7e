"""Webhook endpoints over REST and in the admin: CRUD with write-only secrets, Send test
event, the list's delivery health without N+1 queries, the per-endpoint delivery log with
retry and replay, key rotation."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channels_app.crypto import decrypt
from channels_app.models import WebhookEndpoint
from channels_app.services.secrets import encrypted_secrets_rotate
from channels_app.services.webhooks import webhook_endpoint_record_outcome, webhook_endpoint_save
from notifications.models import Delivery, DeliveryAttempt
from tests.support import api_client_for

from .webhook_servers import Reply

URL = "/api/webhook-endpoints/"


@pytest.fixture(autouse=True)
def loopback(private_networks):
    """These tests post to receivers on 127.0.0.1."""


def create(client, **values):
    return client.post(URL, {"name": "Ops", "url": "https://93.184.216.34/hook", **values},
                       format="json")


def test_crud_with_a_write_only_secret(staff, make_workspace):
    client = api_client_for(staff)
    workspace = make_workspace("Ops")

    response = create(client, secret="topsecret", categories=["queries"],
                      event_types=["query.query_failed"], workspace_id=workspace.public_id)

    assert response.status_code == 201, response.content
    data = response.json()
    assert "secret" not in data and "routing_key" not in data
    assert data["secret_set"] is True
    assert (data["max_retries"], data["is_active"], data["format"]) == (3, True, "datafi")
    assert data["workspace_id"] == workspace.public_id
    assert (data["categories"], data["event_types"]) == (["queries"], ["query.query_failed"])
    endpoint = WebhookEndpoint.objects.get(pk=data["id"])
    assert endpoint.secret == "topsecret"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM channels_app_webhookendpoint WHERE id = %s",
                       [endpoint.pk])
        stored = cursor.fetchone()[0]
    assert "topsecret" not in stored and decrypt(stored) == "topsecret"

    detail = f"{URL}{endpoint.pk}/"
    assert "secret" not in client.get(detail).json()
    assert client.patch(detail, {"secret": "", "name": "Ops 2"}, format="json").json()[
        "secret_set"] is True  # empty keeps
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret) == ("Ops 2", "topsecret")
    assert client.patch(detail, {"secret": None}, format="json").json()["secret_set"] is False
    assert client.patch(detail, {"workspace_id": None}, format="json").json()[
        "workspace_id"] is None
    assert client.delete(detail).status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(("values", "field"), [
    ({"categories": ["nope"]}, "categories"),
    ({"event_types": ["query.nope"]}, "event_types"),
    ({"workspace_id": "ws_missing"}, "workspace_id"),
    ({"format": "teams"}, "format"),
    ({"format": "pagerduty"}, "routing_key"),
    ({"max_retries": 11}, "max_retries"),
])
def test_bad_values_are_a_400_naming_the_field(staff, values, field):
    response = create(api_client_for(staff), **values)

    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(("values", "field", "problem"), [
    ({"name": "Ops\r\nX-Injected: 1"}, "name", "control characters"),
    ({"name": "Ops\u2028Team"}, "name", "control characters"),
    ({"secret": "s" * (1024 * 1024)}, "secret", "1024"),
    ({"format": "pagerduty", "routing_key": "k" * 65}, "routing_key", "64"),
    ({"categories": ["queries"] * 100_000}, "categories", "1000"),
    ({"event_types": [7] * 1001}, "event_types", "1000"),
    ({"nmae": "Ops"}, "nmae", "unknown field"),
    ({"secret_set": False}, "secret_set", "read-only"),
    ({"id": 99}, "id", "read-only"),
    ({"consecutive_failures": 0}, "consecutive_failures", "read-only"),
], ids=["crlf-name", "separator-name", "huge-secret", "long-routing-key", "huge-categories",
        "many-event-types", "unknown", "secret-set", "id", "counter"])
def test_refused_values_are_a_short_400_naming_the_field(staff, values, field, problem):
    client = api_client_for(staff)
    endpoint = webhook_endpoint_save(values={"name": "Before", "url": "https://93.184.216.34/"})

    created = create(client, **values)
    changed = client.patch(f"{URL}{endpoint.pk}/", values, format="json")

    for response in (created, changed):
        assert response.status_code == 400, response.content[:300]
        assert list(response.json()) == [field]
        assert problem in str(response.json()[field])
        assert len(response.content) < 1000  # names the problem; does not echo the value
    assert list(WebhookEndpoint.objects.values_list("name", "secret")) == [("Before", "")]


def test_the_longest_secret_and_routing_key_are_accepted(staff):
    response = create(api_client_for(staff), secret="s" * 1024, format="pagerduty",
                      routing_key="k" * 64)

    assert response.status_code == 201, response.content[:300]
    endpoint = WebhookEndpoint.objects.get()
    assert (len(endpoint.secret), len(endpoint.routing_key)) == (1024, 64)


def test_send_test_event_refuses_a_body_with_fields(staff):
    endpoint = webhook_endpoint_save(values={"name": "Ops", "url": "https://93.184.216.34/"})

    response = api_client_for(staff).post(f"{URL}{endpoint.pk}/test/", {"url": "x"},
                                          format="json")

    assert response.status_code == 400
    assert "unknown field" in response.json()["url"][0]


def test_endpoints_need_staff_with_the_permissions(user, staff):
    assert create(api_client_for(user)).status_code == 403
    assert api_client_for(user).get(URL).status_code == 403
    assert create(api_client_for(staff)).status_code == 201


def test_send_test_event_answers_how_it_went(staff, receiver):
    server = receiver([Reply(200), Reply(500)])
    endpoint = webhook_endpoint_save(values={"name": "Ops", "url": server.url(),
                                             "secret": "s"})
    client = api_client_for(staff)

    ok = client.post(f"{URL}{endpoint.pk}/test/").json()
    failed = client.post(f"{URL}{endpoint.pk}/test/").json()

    assert set(ok) == {"ok", "status_code", "error", "duration_ms"}
    assert (ok["ok"], ok["status_code"], ok["error"]) == (True, 200, "")
    assert isinstance(ok["duration_ms"], int)
    assert (failed["ok"], failed["status_code"]) == (False, 500)
    assert "HTTP 500" in failed["error"]
    body = server.received[0].json()
    assert body["event_type"] == "webhook.test"
    assert set(body) == {"event_type", "priority", "timestamp", "workspace_id", "payload"}
    assert server.received[0].header("X-Datafi-Signature").startswith("t=")
    assert not Delivery.objects.exists()  # a sample, not a delivery


def test_rotating_keys_covers_webhook_secrets(db, settings):
    from cryptography.fernet import Fernet

    webhook_endpoint_save(values={"name": "Ops", "url": "https://93.184.216.34/",
                                  "secret": "s1", "format": "pagerduty", "routing_key": "rk"})
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode(),
                                     *settings.FIELD_ENCRYPTION_KEY]

    counts = encrypted_secrets_rotate()

    assert counts["channels_app.WebhookEndpoint.secret"] == 1
    assert counts["channels_app.WebhookEndpoint.routing_key"] == 1
    settings.FIELD_ENCRYPTION_KEY = settings.FIELD_ENCRYPTION_KEY[:1]
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.secret, endpoint.routing_key) == ("s1", "rk")


# --- admin ----------------------------------------------------------------------------------

CHANGELIST = "/admin/channels_app/webhookendpoint/"


def sends(endpoint, statuses):
    """Deliveries to ``endpoint`` with these statuses; the finished ones recorded on the
    endpoint as the delivery pipeline records them when a send finishes."""
    rows = Delivery.objects.bulk_create(
        Delivery(kind="digest", channel="webhook", target=str(endpoint.pk), priority="low",
                 bucket="15m", status=status) for status in statuses)
    for status in statuses:
        if status in ("delivered", "failed"):
            webhook_endpoint_record_outcome(endpoint_id=endpoint.pk,
                                            delivered=status == "delivered",
                                            status_code=None, error="")
    return rows


def test_admin_list_shows_last_status_and_success_rate_without_n_plus_one(admin_client):
    first = webhook_endpoint_save(values={"name": "A", "url": "https://93.184.216.34/a"})
    sends(first, ["delivered"] * 3 + ["failed"])
    with CaptureQueriesContext(connection) as one_endpoint:
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert "75% of 4" in html and "failed" in html

    for n in range(6):
        sends(webhook_endpoint_save(values={"name": f"E{n}", "url": f"https://93.184.216.34/{n}"}),
              ["delivered", "pending"])
    with CaptureQueriesContext(connection) as seven_endpoints:
        response = admin_client.get(CHANGELIST)

    assert response.content.decode().count("100% of 1") == 6
    assert len(seven_endpoints.captured_queries) <= len(one_endpoint.captured_queries)


def test_admin_lists_webhook_endpoints_under_events(admin_client):
    html = admin_client.get("/admin/events/").content.decode()

    assert "Webhook endpoints" in html and "/admin/channels_app/webhookendpoint/" in html


def test_admin_send_test_event_shows_the_answer(admin_client, receiver):
    server = receiver([Reply(202, body=b'{"accepted": 1}')])
    endpoint = webhook_endpoint_save(values={"name": "Ops", "url": server.url()})

    response = admin_client.post(
        reverse("admin:channels_app_webhookendpoint_test", args=[endpoint.pk]), follow=True)

    html = response.content.decode()
    assert "Test event delivered: HTTP 202" in html and "accepted" in html
    assert len(server.received) == 1


def test_admin_form_keeps_a_secret_left_empty(admin_client, receiver):
    endpoint = webhook_endpoint_save(values={"name": "Ops", "url": "https://93.184.216.34/",
                                             "secret": "keep-me"})
    change = reverse("admin:channels_app_webhookendpoint_change", args=[endpoint.pk])
    page = admin_client.get(change).content.decode()
    assert "keep-me" not in page

    response = admin_client.post(change, {
        "name": "Renamed", "url": "https://93.184.216.34/", "is_active": "on",
        "format": "datafi", "max_retries": "3", "secret": "", "routing_key": ""})

    assert response.status_code == 302, response.content.decode()[:3000]
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret) == ("Renamed", "keep-me")


@pytest.mark.parametrize(("field", "value"), [
    ("name", "Ops\r\nX-Injected: 1"), ("secret", "s" * 1025), ("routing_key", "k" * 65),
])
def test_admin_form_refuses_control_characters_and_long_secrets(admin_client, field, value):
    add = reverse("admin:channels_app_webhookendpoint_add")
    form = {"name": "Ops", "url": "https://93.184.216.34/", "is_active": "on",
            "format": "pagerduty", "max_retries": "3", "secret": "", "routing_key": "key"}

    response = admin_client.post(add, {**form, field: value})

    assert response.status_code == 200  # the form again, with the error on the field
    assert list(response.context["adminform"].form.errors) == [field]
    assert not WebhookEndpoint.objects.exists()


def test_admin_log_filters_by_status_shows_attempts_and_retries_or_replays(admin_client):
    endpoint = webhook_endpoint_save(values={"name": "Ops", "url": "https://93.184.216.34/"})
    failed, delivered = sends(endpoint, ["failed", "delivered"])
    DeliveryAttempt.objects.create(delivery=failed, number=1, started_at=failed.created_at,
                                   outcome="permanent", status_code=400, error="HTTP 400 nope")
    log = reverse("admin:notifications_delivery_target_log", args=["webhook", endpoint.pk])

    html = admin_client.get(log, {"status": "failed"}).content.decode()

    assert str(failed.pk) in html and str(delivered.pk) not in html
    assert "attempt 1" in html and "HTTP 400 nope" in html
    assert set(re.findall(r'value="(retry|replay)"', html)) == {"retry", "replay"}

    admin_client.post(log, {"delivery": str(failed.pk), "action": "retry"})
    admin_client.post(log, {"delivery": str(delivered.pk), "action": "replay"})
    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert failed.status == delivered.status == "pending"
    assert Delivery.objects.count() == 2  # the same ids, sent again
