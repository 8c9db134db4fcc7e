"""The delivery pipeline in this process against real SMTP servers on loopback: one attempt
at a time (``delivery_send``), retries and their backoff, failures, hand retries, the sweep.

These tests run inside the test's transaction, so nothing is enqueued (on-commit tasks
never fire); each step the worker would take is called here. tests/notifications/
test_delivery_worker.py runs the same pipeline on a real worker.
"""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app.emails import make_message_id
from channels_app.models import EmailSettings
from events import emit
from events.models import EventType
from notifications.deliveries import enqueue as delivery
from notifications.deliveries.send import Outcome, delivery_send, retry_delay
from notifications.deliveries.sweep import delivery_sweep
from notifications.models import Delivery, DeliveryAttempt, RoutingRule
from notifications.routing.route import event_route
from notifications.services.digests import digest_flush
from tests.channels_app.smtp_servers import HOST
from tests.support import api_client_for, send_when_due

from .conftest import SENDER

CRITICAL = "data_source.connection_lost"


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.DATAFI_RETRY_BASE_SECONDS = 0.5
    settings.DATAFI_EMAIL_MAX_ATTEMPTS = 4


@pytest.fixture
def email_rule(db):
    def rule(event_type=CRITICAL):
        RoutingRule.objects.update_or_create(
            event_type=EventType.objects.get(key=event_type), defaults={"channels": ["email"]})
    return rule


def route(event_type, workspace, **payload):
    event = emit(event_type, workspace=workspace, payload=payload)
    event_route(event_id=event.pk)
    return event


def one_email_delivery(workspace, smtp, email_on, email_rule, *, replies=()):
    server = smtp(replies=replies)
    email_on(server)
    email_rule()
    event = route(CRITICAL, workspace, datasource_name="Production Snowflake")
    return server, Delivery.objects.get(event=event, channel="email")



def waits_between(attempts) -> list[float]:
    """Seconds from the end of each attempt (start + duration) to the start of the next."""
    pairs = zip(attempts, attempts[1:], strict=False)
    return [(later.started_at - earlier.started_at).total_seconds()
            - earlier.duration_ms / 1000 for earlier, later in pairs]


def test_retry_delays_double_within_twenty_percent_and_stop_at_the_cap(settings):
    settings.DATAFI_RETRY_BASE_SECONDS = 10
    settings.DATAFI_RETRY_MAX_SECONDS = 300
    for attempt, base in [(1, 10), (2, 20), (3, 40), (4, 80)]:
        delays = [retry_delay(attempt) for _ in range(200)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len({round(d, 6) for d in delays}) > 1  # jittered, not fixed
    assert max(retry_delay(10) for _ in range(50)) <= 300


def test_451_twice_then_accepted_is_delivered_once_after_three_growing_attempts(
        make_workspace, smtp_server, email_on, email_rule):
    workspace = make_workspace(members=1)
    server, row = one_email_delivery(workspace, smtp_server, email_on, email_rule,
                                     replies=["451 4.3.0 Try again later"] * 2)

    outcomes = [send_when_due(row.pk) for _ in range(3)]

    assert outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.DELIVERED]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 250)
    assert row.delivered_at is not None and row.next_attempt_at is None
    assert len(server.handler.accepted) == 1
    attempts = list(DeliveryAttempt.objects.filter(delivery=row).order_by("number"))
    assert [(a.number, a.outcome, a.status_code) for a in attempts] == [
        (1, "transient", 451), (2, "transient", 451), (3, "delivered", 250)]
    assert "Try again later" in attempts[0].error
    assert attempts[2].response.startswith("250")
    gap1, gap2 = waits_between(attempts)
    assert gap1 >= 0.4 and gap2 >= 0.8  # base 0.5 s x 2^(n-1), at least -20%
    assert gap2 > gap1
    # Every attempt of the delivery is the same message to the receiver.
    expected_id = make_message_id(row.pk, SENDER)
    assert {r.message["Message-ID"] for r in server.received} == {expected_id}


def test_a_transient_error_schedules_the_retry_durably(
        make_workspace, smtp_server, email_on, email_rule, django_capture_on_commit_callbacks,
        monkeypatch):
    workspace = make_workspace(members=1)
    server, row = one_email_delivery(workspace, smtp_server, email_on, email_rule,
                                     replies=["421 4.7.0 Busy"])
    published = []
    monkeypatch.setattr(delivery.current_app, "send_task",
                        lambda name, **options: published.append((name, options)))

    with django_capture_on_commit_callbacks(execute=True):
        before = timezone.now()
        assert delivery_send(delivery_id=row.pk) == Outcome.RETRYING

    row.refresh_from_db()
    assert row.status == "pending" and row.attempts == 1 and row.last_status_code == 421
    delay = (row.next_attempt_at - before).total_seconds()
    assert 0.4 <= delay <= 0.6 + 5  # 0.5 s +-20%, plus this test's own time
    [(name, options)] = published
    assert name == "notifications.delivery_send"
    assert options["kwargs"] == {"delivery_id": str(row.pk), "channel": "email"}
    assert 0.4 <= options["countdown"] <= 0.6


def test_550_fails_at_once_and_shows_in_admin_and_api_then_retry_sends_same_id(
        make_workspace, smtp_server, email_on, email_rule, staff, client):
    workspace = make_workspace(members=1)
    server, row = one_email_delivery(workspace, smtp_server, email_on, email_rule,
                                     replies=["550 5.1.1 No such user"])

    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 550)
    assert "No such user" in row.last_error
    api = api_client_for(staff)
    listed = api.get("/api/deliveries/", {"status": "failed"}).json()["results"]
    assert [(d["id"], d["channel"], d["status"], d["attempts"], d["last_status_code"],
             d["address"], d["event_type"]) for d in listed] == [
        (str(row.pk), "email", "failed", 1, 550, row.target, CRITICAL)]
    attempts = api.get(f"/api/deliveries/{row.pk}/attempts/").json()
    assert [(a["number"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "permanent", 550)]
    assert "No such user" in attempts[0]["error"] and attempts[0]["duration_ms"] >= 0
    client.force_login(staff)
    changelist = client.get(reverse("admin:notifications_delivery_changelist"),
                            {"status__exact": "failed"}).content.decode()
    assert row.target in changelist and "failed" in changelist
    assert "Retry the selected failed deliveries" in changelist
    change = client.get(reverse("admin:notifications_delivery_change", args=[row.pk]))
    page = change.content.decode()
    assert "550 5.1.1 No such user" in page and "Permanent error" in page

    retried = api.post(f"/api/deliveries/{row.pk}/retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        "delivered", 2, 250, "")
    assert [r.message["Message-ID"] for r in server.received] == [
        make_message_id(row.pk, SENDER)] * 2
    assert list(row.attempt_log.values_list("number", "outcome")) == [
        (1, "permanent"), (2, "delivered")]
    again = api.post(f"/api/deliveries/{row.pk}/retry/")
    assert again.status_code == 409
    assert again.json() == {"detail": "Only a failed delivery can be retried; this one is "
                                      "delivered.", "code": "not_retryable"}


def test_retry_needs_the_change_permission(make_workspace, smtp_server, email_on, email_rule,
                                           make_user):
    workspace = make_workspace(members=1)
    _, row = one_email_delivery(workspace, smtp_server, email_on, email_rule,
                                replies=["550 5.1.1 No such user"])
    delivery_send(delivery_id=row.pk)
    viewer = make_user(staff=True)
    viewer.user_permissions.add(*_perms("view_delivery"))

    assert api_client_for(viewer).get(f"/api/deliveries/{row.pk}/attempts/").status_code == 200
    assert api_client_for(viewer).post(f"/api/deliveries/{row.pk}/retry/").status_code == 403
    assert Delivery.objects.get(pk=row.pk).status == "failed"


def _perms(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="notifications",
                                     codename__in=codenames)


def test_admin_action_retries_a_failed_delivery(make_workspace, smtp_server, email_on,
                                                email_rule, staff, client):
    workspace = make_workspace(members=1)
    server, row = one_email_delivery(workspace, smtp_server, email_on, email_rule,
                                     replies=["554 5.7.1 Rejected"])
    delivery_send(delivery_id=row.pk)
    client.force_login(staff)

    response = client.post(reverse("admin:notifications_delivery_changelist"),
                           {"action": "retry", "_selected_action": [str(row.pk)]}, follow=True)

    assert "1 deliveries sent again." in response.content.decode()
    assert Delivery.objects.get(pk=row.pk).status == "pending"
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED
    assert len(server.received) == 2


def test_the_last_transient_failure_fails_the_delivery(make_workspace, smtp_server, email_on,
                                                       email_rule, settings):
    settings.DATAFI_EMAIL_MAX_ATTEMPTS = 2
    workspace = make_workspace(members=1)
    _, row = one_email_delivery(workspace, smtp_server, email_on, email_rule,
                                replies=["451 busy"] * 3)

    outcomes = [send_when_due(row.pk) for _ in range(2)]

    assert outcomes == [Outcome.RETRYING, Outcome.FAILED]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 2, 451)


def test_a_closed_port_is_transient_with_no_code(make_workspace, smtp_server, email_on,
                                                 email_rule, closed_port):
    workspace = make_workspace(members=1)
    _, row = one_email_delivery(workspace, smtp_server, email_on, email_rule)
    email_on(closed_port)

    assert delivery_send(delivery_id=row.pk) == Outcome.RETRYING
    attempt = DeliveryAttempt.objects.get(delivery=row)
    assert (attempt.outcome, attempt.status_code) == ("transient", None)
    assert "refused" in attempt.error


def test_a_delivered_or_claimed_row_is_never_sent_again(make_workspace, smtp_server, email_on,
                                                        email_rule):
    workspace = make_workspace(members=1)
    server, row = one_email_delivery(workspace, smtp_server, email_on, email_rule)
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    assert delivery_send(delivery_id=row.pk) == Outcome.SKIPPED
    Delivery.objects.filter(pk=row.pk).update(status="sending")
    assert delivery_send(delivery_id=row.pk) == Outcome.SKIPPED
    assert delivery_send(delivery_id="00000000-0000-0000-0000-000000000000") == Outcome.SKIPPED
    assert len(server.received) == 1
    assert DeliveryAttempt.objects.filter(delivery=row).count() == 1


def test_while_email_is_off_deliveries_wait_without_an_attempt(make_workspace, smtp_server,
                                                                 email_on, email_rule):
    workspace = make_workspace(members=1)
    server = smtp_server()
    email_on(server, enabled=False)
    email_rule()
    event = route(CRITICAL, workspace, datasource_name="Snowflake")
    row = Delivery.objects.get(event=event, channel="email")

    assert delivery_send(delivery_id=row.pk) == Outcome.WAITING
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, None)
    assert delivery_sweep().overdue == 0  # the sweep leaves it alone while email is off
    assert server.received == []

    email_on(server, enabled=True)
    assert delivery_sweep().overdue == 1  # waiting with no due time: picked up at once
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED


def test_enabled_but_incomplete_settings_wait_like_email_off_until_completed(
        make_workspace, smtp_server, email_on, email_rule, staff):
    workspace = make_workspace(members=1)
    server = smtp_server()
    email_on(server)
    # Enabled with no host and no from address, as an older version or SQL by hand left it.
    EmailSettings.objects.filter(pk=EmailSettings.SINGLETON_ID).update(host="", from_email="")
    email_rule()
    event = route(CRITICAL, workspace, datasource_name="Snowflake")
    row = Delivery.objects.get(event=event, channel="email")

    assert delivery_send(delivery_id=row.pk) == Outcome.WAITING
    assert delivery_sweep().overdue == 0  # nor does the sweep enqueue it
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == (
        "pending", 0, None, "")
    assert not DeliveryAttempt.objects.filter(delivery=row).exists()
    assert server.received == []

    completed = api_client_for(staff).patch("/api/email-settings/", {
        "host": HOST, "from_email": SENDER}, format="json")

    assert completed.status_code == 200, completed.json()
    assert delivery_sweep().overdue == 1  # waiting with no due time: picked up at once
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED
    assert [r.rcpt_tos for r in server.received] == [[workspace.people[0].email]]


def test_the_sweep_takes_back_a_send_whose_worker_died(make_workspace, smtp_server, email_on,
                                                       email_rule, settings):
    settings.DATAFI_SENDING_TIMEOUT_SECONDS = 300
    workspace = make_workspace(members=1)
    server, row = one_email_delivery(workspace, smtp_server, email_on, email_rule)
    started = timezone.now() - timezone.timedelta(seconds=301)
    Delivery.objects.filter(pk=row.pk).update(status="sending", attempts=1,
                                              sending_started_at=started)
    DeliveryAttempt.objects.create(delivery=row, number=1, started_at=started)
    fresh = route(CRITICAL, workspace, datasource_name="Other")
    Delivery.objects.filter(event=fresh).update(status="sending", attempts=1,
                                                sending_started_at=timezone.now())

    result = delivery_sweep()

    assert result.interrupted == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "worker stopped" in row.last_error
    assert Delivery.objects.get(event=fresh).status == "sending"  # still within its timeout
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED
    assert list(row.attempt_log.values_list("number", "outcome")) == [
        (1, "transient"), (2, "delivered")]


def test_the_sweep_enqueues_a_pending_send_whose_message_was_lost(
        make_workspace, smtp_server, email_on, email_rule, settings, monkeypatch,
        django_capture_on_commit_callbacks):
    settings.DATAFI_DELIVERY_GRACE_SECONDS = 60
    workspace = make_workspace(members=1)
    _, row = one_email_delivery(workspace, smtp_server, email_on, email_rule)
    published = []
    monkeypatch.setattr(delivery.current_app, "send_task",
                        lambda name, **options: published.append((name, options["kwargs"])))

    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_sweep().overdue == 0  # due just now: its task is on its way
    Delivery.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timezone.timedelta(seconds=61))
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_sweep().overdue == 1
        assert delivery_sweep().overdue == 0  # not again until another grace has passed

    assert published == [("notifications.delivery_send",
                           {"delivery_id": str(row.pk), "channel": "email"})]


def test_routing_enqueues_each_immediate_email_after_commit(
        make_workspace, email_rule, monkeypatch, django_capture_on_commit_callbacks):
    workspace = make_workspace(members=2)
    email_rule()
    published = []
    monkeypatch.setattr(delivery.current_app, "send_task",
                        lambda name, **options: published.append((name, options["kwargs"])))
    event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "X"})

    with django_capture_on_commit_callbacks() as callbacks:
        event_route(event_id=event.pk)
        assert published == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    ids = [str(pk) for pk in Delivery.objects.filter(event=event).values_list("pk", flat=True)]
    assert len(ids) == 2
    # Both in one batch (one task, one kept SMTP connection).
    assert len(published) == 1
    name, kwargs = published[0]
    assert name == "notifications.deliveries_send"
    assert sorted(kwargs["delivery_ids"]) == sorted(ids)


def test_an_email_digest_is_one_delivery_under_the_digest_id(
        make_workspace, smtp_server, email_on, email_rule, staff):
    workspace = make_workspace(members=2)
    server = smtp_server()
    email_on(server)
    email_rule("query.long_running_query")
    for n in range(3):
        route("query.long_running_query", workspace, query_name=f"q{n}")

    result = digest_flush(bucket="5m")

    assert (result.claimed_items, result.digests_enqueued) == (6, 2)
    sends = list(Delivery.objects.filter(kind="digest"))
    assert len(sends) == 2 and all(d.pk == d.digest_id for d in sends)
    for send in sends:
        assert delivery_send(delivery_id=send.pk) == Outcome.DELIVERED
    assert set(Delivery.objects.filter(kind="event").values_list("status", flat=True)) == {
        "delivered"}
    digests = api_client_for(staff).get("/api/deliveries/",
                                        {"event_type": "digest"}).json()["results"]
    assert sorted(r["id"] for r in digests) == sorted(str(d.pk) for d in sends)
    assert all(r["status"] == "delivered" and r["attempts"] == 1 for r in digests)
    assert sorted(r.message["Message-ID"] for r in server.received) == sorted(
        make_message_id(d.pk, SENDER) for d in sends)
    subjects = {r.message["Subject"] for r in server.received}
    assert subjects == {"Datafi digest: 3 notifications (medium)"}
    assert re.search(r"q0.*q1.*q2", server.received[0].text(), re.S)
