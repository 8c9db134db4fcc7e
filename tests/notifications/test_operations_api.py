"""Staff REST for what the admin's digest and delivery pages do: scripted operations."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from channels_app.models import DigestSetting
from config import control_plane
from notifications.models import Delivery, Digest, Notification, RoutingRule
from tests.support import emit_and_route

MEDIUM = "query.long_running_query"
LOW = "policy.policy_created"
CRITICAL = "data_source.connection_lost"


@pytest.fixture
def pending(make_workspace):
    workspace = make_workspace(members=2)
    emit_and_route(MEDIUM, workspace, query_name="slow")
    emit_and_route(MEDIUM, workspace, query_name="slower")
    emit_and_route(LOW, workspace, policy_name="PII")
    return workspace


def test_pending_counts_per_bucket_and_channel(staff_api, pending):
    response = staff_api.get("/api/digests/pending/")

    assert response.status_code == 200
    assert response.json() == {
        "5m": {"in_app": 4, "email": 0, "webhook": 0},
        "15m": {"in_app": 2, "email": 0, "webhook": 0},
        "1h": {"in_app": 0, "email": 0, "webhook": 0},
    }


def test_flush_now_over_the_api_queues_the_flush_and_does_not_flush_in_the_request(
    staff_api, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_api.post("/api/digests/flush/", {"bucket": "5m"}, format="json")

    assert response.status_code == 202
    assert response.json() == {"bucket": "5m", "queued": True}
    assert not Notification.objects.filter(kind="digest").exists()
    assert not Digest.objects.exists()
    assert staff_api.get("/api/digests/pending/").json()["5m"]["in_app"] == 4
    [publish] = callbacks  # sent to the broker once the request's transaction commits
    assert publish.keywords == {"bucket": "5m"}


def test_flush_now_with_the_broker_down_answers_503_and_says_why(live_db, staff_api, pending,
                                                                   monkeypatch):
    def broker_down(name, **options):
        assert name == control_plane.DIGEST_FLUSH
        raise OSError("Connection refused")

    monkeypatch.setattr("notifications.services.digests.current_app.send_task", broker_down)

    response = staff_api.post("/api/digests/flush/", {"bucket": "5m"}, format="json")

    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "broker_unavailable"
    assert "broker does not answer" in body["detail"] and "5m" in body["detail"]
    assert staff_api.get("/api/digests/pending/").json()["5m"]["in_app"] == 4


def test_flush_refuses_an_unknown_bucket_and_needs_the_permission(
    staff_api, make_user, pending
):
    bad = staff_api.post("/api/digests/flush/", {"bucket": "2m"}, format="json")
    viewer = make_user("viewer", staff=True)
    client = APIClient()
    client.force_authenticate(viewer)
    refused = client.post("/api/digests/flush/", {"bucket": "5m"}, format="json")

    assert bad.status_code == 400 and "bucket" in bad.json()
    assert refused.status_code == 403
    assert not Notification.objects.filter(kind="digest").exists()

    viewer.user_permissions.add(Permission.objects.get(codename="flush_digests"))
    viewer = type(viewer).objects.get(pk=viewer.pk)  # drop the permission cache
    client.force_authenticate(viewer)
    assert client.post("/api/digests/flush/", {"bucket": "5m"}, format="json").status_code == 202


def test_digest_settings_switch_a_channel_to_immediate(staff_api, make_workspace):
    listed = staff_api.get("/api/digest-settings/").json()
    response = staff_api.patch("/api/digest-settings/in_app/", {"digest_enabled": False},
                               format="json")
    workspace = make_workspace(members=1)
    event = emit_and_route(MEDIUM, workspace, query_name="slow")

    assert {row["channel"] for row in listed} == {"in_app", "email", "webhook"}
    assert response.status_code == 200
    assert response.json() == {"channel": "in_app", "digest_enabled": False}
    assert not DigestSetting.objects.get(channel="in_app").digest_enabled
    assert Notification.objects.get(user=workspace.people[0]).event_id == event.pk


def test_deliveries_list_filters_and_is_staff_only(staff_api, api, make_workspace):
    workspace = make_workspace(members=2)
    RoutingRule.objects.create(event_type_id=_event_type_id(CRITICAL),
                               channels=["in_app", "email"], extra_emails=["ops@example.com"])
    emit_and_route(CRITICAL, workspace, datasource_name="Snowflake")
    emit_and_route(MEDIUM, workspace, query_name="slow")

    def listed(**filters):
        response = staff_api.get("/api/deliveries/", filters)
        assert response.status_code == 200, response.content
        return response.json()["results"]

    email = listed(channel="email")
    assert sorted(row["target"] for row in email) == sorted(
        [*(u.email for u in workspace.people), "ops@example.com"])
    assert {row["event_type"] for row in email} == {CRITICAL}
    assert len(listed(bucket="5m")) == 2
    assert len(listed(event_type=MEDIUM, status="pending")) == 2
    assert listed(status="delivered") == []
    assert staff_api.get("/api/deliveries/", {"status": "lost"}).status_code == 400
    assert api.get("/api/deliveries/").status_code == 403


def test_deliveries_list_uses_a_constant_number_of_queries(staff_api, make_workspace):
    workspace = make_workspace(members=3)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert staff_api.get("/api/deliveries/").status_code == 200
        return len(queries)

    emit_and_route(MEDIUM, workspace, query_name="a")
    few = count_queries()
    for n in range(8):
        emit_and_route(LOW, workspace, policy_name=str(n))
    assert Delivery.objects.count() == 27
    assert count_queries() == few


def _event_type_id(key):
    from events.models import EventType

    return EventType.objects.get(key=key).pk


SEED_LINE = "routing:\n  queries:\n    query_failed:\n      channels: [in_app]\n"
STAFF_CALLS = [
    # method, url, body, permissions that let it through
    ("patch", "/api/event-types/data_source.connection_lost/", {"enabled": False},
     ["events.change_eventtype"]),
    ("post", "/api/routing/import/", {"yaml": SEED_LINE},
     ["notifications.add_routingrule", "notifications.change_routingrule",
      "notifications.delete_routingrule", "events.change_eventtype"]),
    ("get", "/api/routing/export/", None, ["notifications.view_routingrule"]),
    ("get", "/api/routing-rules/", None, ["notifications.view_routingrule"]),
    ("post", "/api/routing-rules/", {"category": "queries", "channels": ["in_app"]},
     ["notifications.add_routingrule"]),
    ("patch", "/api/digest-settings/in_app/", {"digest_enabled": False},
     ["channels_app.change_digestsetting"]),
    ("get", "/api/digest-settings/", None, ["channels_app.view_digestsetting"]),
    ("get", "/api/deliveries/", None, ["notifications.view_delivery"]),
    ("get", "/api/digests/pending/", None, ["notifications.view_digest"]),
    ("post", "/api/digests/flush/", {"bucket": "5m"}, ["notifications.flush_digests"]),
]


@pytest.mark.parametrize("method, url, body, needed", STAFF_CALLS,
                         ids=[f"{m} {u}" for m, u, _, _ in STAFF_CALLS])
def test_staff_need_the_model_permission_the_admin_asks_for(make_user, method, url, body,
                                                            needed):
    staff_member = make_user("staff_member", staff=True)
    client = APIClient()
    client.force_authenticate(staff_member)

    refused = getattr(client, method)(url, body, format="json")
    assert refused.status_code == 403, refused.content
    assert DigestSetting.objects.get(channel="in_app").digest_enabled
    assert not RoutingRule.objects.exists()

    for codename in needed:
        app_label, codename = codename.split(".")
        staff_member.user_permissions.add(
            Permission.objects.get(codename=codename, content_type__app_label=app_label))
    client.force_authenticate(type(staff_member).objects.get(pk=staff_member.pk))
    allowed = getattr(client, method)(url, body, format="json")
    assert allowed.status_code in (200, 201, 202), allowed.content
