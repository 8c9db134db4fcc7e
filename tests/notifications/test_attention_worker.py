"""The minute bounds of attention controls are beat's sweeps, with a real worker and a real
beat: what quiet hours held goes out as one digest email within 60 s of switching them off,
and a snoozed notification is back, unread, within 60 s of its time."""

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from events import emit
from events.models import Category
from notifications.models import Delivery, Notification, RoutingRule
from tests.support import api_client_for, wait_until

pytestmark = pytest.mark.worker


def test_held_emails_go_out_within_a_minute_of_switching_quiet_hours_off(
        celery_worker, beat, make_workspace, make_user, smtp_server, email_on):
    server = smtp_server()
    email_on(server)
    night = make_user("night")
    workspace = make_workspace("Ops", users=[night])
    RoutingRule.objects.create(category=Category.objects.get(slug="queries"),
                               channels=["in_app", "email"])
    local = timezone.now().astimezone(ZoneInfo("Pacific/Auckland"))
    api = api_client_for(night)
    api.put("/api/preferences/", {"timezone": "Pacific/Auckland", "quiet_hours": {
        "start": f"{local - timedelta(hours=1):%H:%M}",
        "end": f"{local + timedelta(hours=3):%H:%M}"}}, format="json")
    for name in ("a", "b"):
        emit("query.query_failed", workspace=workspace, payload={"query_name": name})
    wait_until(lambda: Delivery.objects.filter(user=night, status="held").count() == 2,
               timeout=120, message="the worker to route both emails and hold them")
    assert Notification.objects.filter(user=night).count() == 2  # the bell, at once

    switched_off = time.monotonic()
    api.put("/api/preferences/", {"quiet_hours": None}, format="json")
    wait_until(lambda: any(r.rcpt_tos == [night.email] for r in server.received),
               timeout=60, message="the held emails within a minute of switching off")

    assert time.monotonic() - switched_off < 60
    [message] = [r for r in server.received if r.rcpt_tos == [night.email]]
    assert "Query failed: a" in message.text() and "Query failed: b" in message.text()


def test_a_snoozed_notification_is_back_unread_within_a_minute_of_its_time(
        celery_worker, beat, make_workspace, user):
    workspace = make_workspace("Ops", users=[user])
    emit("query.query_failed", workspace=workspace, payload={"query_name": "q"})
    wait_until(lambda: Notification.objects.filter(user=user).exists(), timeout=120,
               message="the worker to route the event")
    notification = Notification.objects.get(user=user)
    api = api_client_for(user)
    until = timezone.now() + timedelta(seconds=5)
    api.post(f"/api/notifications/{notification.pk}/snooze/", {"until": until.isoformat()},
             format="json")
    assert api.get("/api/notifications/unread-count/").json()["count"] == 0

    wait_until(lambda: api.get("/api/notifications/unread-count/").json()["count"] == 1,
               timeout=65, message="the notification back within a minute of its time")

    notification.refresh_from_db()
    assert notification.snoozed_until is None and notification.read_at is None
