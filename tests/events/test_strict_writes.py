"""Every write endpoint refuses a field it does not take: a 400 naming it, and nothing written.

An unknown field (a misspelling, or one the endpoint cannot change) and a read-only field
sent back (``id``, ``secret_set``) are refused alike; neither is ever silently ignored.
"""

import pytest
from django.test import Client
from django.utils import timezone

from channels_app.models import DigestSetting, EmailSettings, WebhookEndpoint
from channels_app.services.email import email_settings_get
from events.models import EventType, Membership, Workspace
from notifications.models import (
    Delivery,
    Notification,
    NotificationPreference,
    RoutingRule,
)
from tests.support import api_client_for


@pytest.fixture
def world(make_user, private_networks):
    """One of everything a write endpoint changes, and a superuser's client."""
    staff = make_user("root", superuser=True)
    make_user("ann")
    email_settings_get()  # the record every settings request reads (email off)
    workspace = Workspace.objects.create(public_id="ws_sales", name="Sales")
    endpoint = WebhookEndpoint.objects.create(name="Ops", url="https://93.184.216.34/")
    rule = RoutingRule.objects.create(event_type=EventType.objects.get(key="query.query_failed"),
                                      channels=["in_app"])
    notification = Notification.objects.create(
        user=staff, kind=Notification.Kind.EVENT, priority="high", category="queries",
        event_type_key="query.query_failed", title="Query failed", items=[])
    delivery = Delivery.objects.create(kind="digest", channel="webhook", target=str(endpoint.pk),
                                       priority="low", bucket="15m", status="failed")
    return {"api": api_client_for(staff), "workspace": workspace, "endpoint": endpoint,
            "rule": rule, "notification": notification, "delivery": delivery}


@pytest.fixture
def private_networks(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


def everything() -> dict:
    """What any write endpoint could change."""
    return {
        "email": list(EmailSettings.objects.values()),
        "endpoints": list(WebhookEndpoint.objects.values("name", "url", "is_active")),
        "rules": list(RoutingRule.objects.values("category", "event_type", "channels")),
        "event_types": list(EventType.objects.values("key", "enabled", "priority_override",
                                                     "title_template")),
        "preferences": list(NotificationPreference.objects.values()),
        "digest_settings": list(DigestSetting.objects.values()),
        "workspaces": list(Workspace.objects.values("public_id", "name")),
        "members": list(Membership.objects.values("workspace", "user")),
        "read": list(Notification.objects.values("id", "read_at")),
        "deliveries": list(Delivery.objects.values("id", "status")),
    }


EP, NOTE, DEL = "{endpoint}", "{notification}", "{delivery}"
WRITES = [
    ("patch", "/api/email-settings/", {"host": "smtp.example.com"}),
    ("put", "/api/email-settings/", {"host": "smtp.example.com"}),
    ("post", "/api/email-settings/test-connection/", {"host": "smtp.example.com"}),
    ("post", "/api/email-settings/send-test-email/", {"to": "ops@example.com"}),
    ("post", "/api/webhook-endpoints/", {"name": "New", "url": "https://93.184.216.34/n"}),
    ("patch", f"/api/webhook-endpoints/{EP}/", {"name": "Renamed"}),
    ("put", f"/api/webhook-endpoints/{EP}/", {"name": "Renamed",
                                               "url": "https://93.184.216.34/"}),
    ("post", f"/api/webhook-endpoints/{EP}/test/", {}),
    ("post", "/api/routing-rules/", {"category": "queries", "channels": ["email"]}),
    ("patch", "/api/routing-rules/{rule}/", {"channels": ["email"]}),
    ("patch", "/api/event-types/query.query_failed/", {"enabled": False}),
    ("put", "/api/preferences/", {"categories": {"queries": {"email": False}}}),
    ("patch", "/api/digest-settings/email/", {"digest_enabled": False}),
    ("post", "/api/workspaces/", {"name": "New"}),
    ("patch", "/api/workspaces/ws_sales/", {"name": "Renamed"}),
    ("post", "/api/workspaces/ws_sales/members/", {"username": "ann"}),
    ("post", "/api/notifications/read/", {"ids": [NOTE]}),
    ("post", f"/api/notifications/{NOTE}/read/", {}),
    ("post", f"/api/notifications/{NOTE}/unread/", {}),
    ("post", "/api/notifications/read-all/", {}),
    ("post", f"/api/deliveries/{DEL}/retry/", {}),
    ("post", f"/api/deliveries/{DEL}/replay/", {}),
    ("post", "/api/digests/flush/", {"bucket": "5m"}),
    ("post", "/api/routing/import/", {"yaml": "routing: {}\n"}),
    ("post", "/api/events/", {"event_type": "query.query_failed"}),
]


def fill(world, url: str, body: dict) -> tuple[str, dict]:
    ids = {"endpoint": world["endpoint"].pk, "notification": world["notification"].pk,
           "delivery": world["delivery"].pk, "rule": world["rule"].pk}
    body = {name: [ids["notification"]] if value == [NOTE] else value
            for name, value in body.items()}
    return url.format(**ids), body


@pytest.mark.parametrize(("method", "url", "body"), WRITES,
                         ids=[f"{method}-{url}" for method, url, _ in WRITES])
def test_an_unknown_field_is_refused_naming_it_and_nothing_is_written(world, method, url,
                                                                      body):
    url, body = fill(world, url, body)
    before = everything()

    response = getattr(world["api"], method)(url, {**body, "bogus": 1}, format="json")

    assert response.status_code == 400, response.content[:500]
    errors = response.json()
    assert list(errors) == ["bogus"], errors
    assert errors["bogus"][0].startswith("unknown field")
    assert everything() == before


READ_ONLY = [
    ("patch", "/api/email-settings/", {"password_set": False}),
    ("patch", f"/api/webhook-endpoints/{EP}/", {"secret_set": True}),
    ("patch", f"/api/webhook-endpoints/{EP}/", {"id": 7}),
    ("patch", f"/api/webhook-endpoints/{EP}/", {"deactivated_reason": ""}),
    ("patch", "/api/routing-rules/{rule}/", {"updated_at": "2026-01-01T00:00:00Z"}),
    ("patch", "/api/event-types/query.query_failed/", {"title_template": "Changed"}),
    ("patch", "/api/event-types/query.query_failed/", {"effective_priority": "low"}),
    ("put", "/api/preferences/", {"critical_always_delivered": False}),
    ("patch", "/api/digest-settings/email/", {"channel": "webhook"}),
    ("patch", "/api/workspaces/ws_sales/", {"created_at": "2026-01-01T00:00:00Z"}),
    ("post", "/api/workspaces/ws_sales/members/", {"user_id": 1}),
]


@pytest.mark.parametrize(("method", "url", "body"), READ_ONLY,
                         ids=[f"{list(body)[0]}" for _, _, body in READ_ONLY])
def test_a_read_only_field_is_refused_saying_so(world, method, url, body):
    url, body = fill(world, url, body)
    valid = {"/api/preferences/": {"categories": {}},
             "/api/workspaces/ws_sales/members/": {"username": "ann"}}.get(url, {})
    before = everything()

    response = getattr(world["api"], method)(url, {**valid, **body}, format="json")

    assert response.status_code == 400, response.content[:500]
    [field] = body
    assert list(response.json()) == [field]
    assert response.json()[field][0].startswith("read-only field; writable: ")
    assert everything() == before


def test_the_known_fields_are_listed_and_many_unknown_ones_are_counted(world):
    api = world["api"]

    one = api.patch("/api/event-types/query.query_failed/", {"title": "x"}, format="json")
    many = api.patch("/api/digest-settings/email/", {f"f{n:02}": n for n in range(30)},
                     format="json")

    assert one.json() == {"title": ["unknown field; known: priority_override, enabled, "
                                     "group_by, repeat_interval_minutes, resolves"]}
    errors = many.json()
    assert len(errors) == 11 and "f00" in errors and "f10" not in errors
    assert errors["non_field_errors"] == ["30 fields refused in all; the first 10 are named"]


def test_a_form_body_is_as_strict_and_its_csrf_token_is_no_field(world):
    client = Client()
    client.force_login(world["notification"].user)

    ok = client.post("/api/notifications/read-all/", {"csrfmiddlewaretoken": "t"})
    refused = client.post("/api/workspaces/", {"name": "New", "owner": "ann"})

    assert ok.status_code == 200
    assert refused.status_code == 400 and list(refused.json()) == ["owner"]
    assert not Workspace.objects.filter(name="New").exists()


def test_valid_writes_still_work(world):
    api = world["api"]

    assert api.patch("/api/event-types/query.query_failed/", {"enabled": False},
                     format="json").status_code == 200
    assert api.post(f"/api/notifications/{world['notification'].pk}/read/").status_code == 200
    assert EventType.objects.get(key="query.query_failed").enabled is False
    assert Notification.objects.get().read_at <= timezone.now()
