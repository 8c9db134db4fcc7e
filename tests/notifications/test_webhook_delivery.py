"""The webhook channel through the delivery pipeline, in this process, against real HTTP
receivers on loopback: the seed's body and signatures, retries and their backoff,
Retry-After, permanent failures, hand retries and replays, deactivation, filters, digests,
Slack and PagerDuty bodies.

As in test_delivery.py, nothing is enqueued (the test's transaction never commits); each
step the worker would take is called here.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks.webhooks import Webhook

from channels_app.models import WebhookEndpoint
from channels_app.services.webhooks import webhook_endpoint_save
from events import emit
from events.models import Category, Event, EventType
from notifications.deliveries.manual import DeliveryNotRetryable, delivery_replay, delivery_retry
from notifications.deliveries.send import Outcome, deliveries_send, delivery_send
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.routing.route import event_route
from notifications.services.digests import digest_flush
from notifications.services.rules import routing_rule_set
from tests.channels_app.webhook_servers import Reply
from tests.support import api_client_for, send_when_due

CRITICAL = "data_source.connection_lost"
SECRET = "whk-test-secret"


@pytest.fixture(autouse=True)
def fast_retries(settings, private_networks):
    settings.DATAFI_RETRY_BASE_SECONDS = 0.5


def endpoint(url, **values):
    return webhook_endpoint_save(values={"name": "Ops hook", "url": url, "secret": SECRET,
                                         **values})


def route(event_type=CRITICAL, workspace=None, occurred_at=None, **payload):
    event = emit(event_type, workspace=workspace, payload=payload, occurred_at=occurred_at)
    event_route(event_id=event.pk)
    return event


def webhook_row(event, hook=None) -> Delivery:
    rows = Delivery.objects.filter(event=event, channel="webhook")
    if hook is not None:
        rows = rows.filter(target=str(hook.pk))
    return rows.get()



def attempts_of(row):
    return list(DeliveryAttempt.objects.filter(delivery=row).order_by("number"))


def test_the_receiver_gets_the_seeds_body_signed_twice(make_workspace, receiver):
    server = receiver()
    hook = endpoint(server.url())
    workspace = make_workspace("Analytics", members=1)
    event = route(workspace=workspace, occurred_at=datetime(2025, 1, 15, 14, 30, tzinfo=UTC),
                  datasource_name="Production Snowflake", error="Connection timeout after 30s")
    row = webhook_row(event, hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    [request] = server.received
    body = request.json()
    assert list(body) == ["event_type", "priority", "timestamp", "workspace_id", "payload"]
    assert body == {
        "event_type": "data_source.connection_lost",
        "priority": "critical",
        "timestamp": "2025-01-15T14:30:00Z",
        "workspace_id": workspace.public_id,
        "payload": {"datasource_name": "Production Snowflake",
                    "error": "Connection timeout after 30s"},
    }
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Datafi-Event") == "data_source.connection_lost"
    assert request.header("X-Datafi-Delivery") == request.header("webhook-id") == str(row.pk)
    # X-Datafi-Signature, checked with an HMAC written here...
    timestamp = int(request.header("webhook-timestamp"))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body,
                        hashlib.sha256).hexdigest()
    assert request.header("X-Datafi-Signature") == f"t={timestamp},v1={expected}"
    # ...and webhook-signature with the Standard Webhooks library.
    verifier = Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode())
    assert verifier.verify(request.body, request.headers)["priority"] == "critical"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)


def test_500_503_then_200_is_delivered_on_the_third_attempt_under_one_id(make_workspace,
                                                                         receiver):
    server = receiver([Reply(500), Reply(503)])
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)

    outcomes = [send_when_due(row.pk) for _ in range(3)]

    assert outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.DELIVERED]
    assert len(server.received) == 3
    assert {r.header("X-Datafi-Delivery") for r in server.received} == {str(row.pk)}
    assert {r.header("webhook-id") for r in server.received} == {str(row.pk)}
    assert len({r.body for r in server.received}) == 1  # the same body every time
    attempts = attempts_of(row)
    assert [(a.outcome, a.status_code) for a in attempts] == [
        ("transient", 500), ("transient", 503), ("delivered", 200)]
    at = [r.at for r in server.received]
    gap1, gap2 = at[1] - at[0], at[2] - at[1]
    assert gap1 >= 0.4 and gap2 >= 0.8 and gap2 > gap1  # base 0.5 s, doubling, -20% at worst


def test_429_with_retry_after_waits_at_least_that_long(make_workspace, receiver):
    server = receiver([Reply(429, headers={"Retry-After": "3"})])
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.RETRYING
    row.refresh_from_db()
    first = attempts_of(row)[0]
    assert (first.outcome, first.status_code) == ("transient", 429)
    assert (row.next_attempt_at - first.started_at).total_seconds() >= 3

    assert send_when_due(row.pk) == Outcome.DELIVERED
    assert server.received[1].at - server.received[0].at >= 3


def test_400_fails_at_once_and_a_hand_retry_resends_it_under_the_same_id(
        make_workspace, receiver, staff):
    server = receiver([Reply(400, body=b'{"error": "bad field"}')])
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 400)
    assert "bad field" in row.last_error
    assert len(server.received) == 1

    response = api_client_for(staff).post(f"/api/deliveries/{row.pk}/retry/")
    assert response.status_code == 200, response.content
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    assert [r.header("X-Datafi-Delivery") for r in server.received] == [str(row.pk)] * 2
    assert [a.number for a in attempts_of(row)] == [1, 2]


def test_replay_sends_a_delivered_delivery_again_under_the_same_id(make_workspace, receiver,
                                                                  staff):
    server = receiver()
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)
    client = api_client_for(staff)
    assert client.post(f"/api/deliveries/{row.pk}/replay/").status_code == 409  # pending
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    response = client.post(f"/api/deliveries/{row.pk}/replay/")
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    assert [r.header("webhook-id") for r in server.received] == [str(row.pk)] * 2
    # Fresh timestamps and signatures per attempt, same body.
    assert server.received[0].body == server.received[1].body
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("delivered", 2)


def test_410_fails_and_deactivates_the_endpoint_and_tells_staff(make_workspace, receiver,
                                                                 staff):
    server = receiver([Reply(410)])
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED

    hook.refresh_from_db()
    assert hook.is_active is False and "410" in hook.deactivated_reason
    [system_event] = Event.objects.filter(event_type__key="system.webhook_endpoint_disabled")
    assert system_event.payload["endpoint_id"] == hook.pk
    event_route(event_id=system_event.pk)
    assert Notification.objects.filter(user=staff, event=system_event).exists()
    # The next event reaches no inactive endpoint.
    later = route(workspace=make_workspace("Other"), datasource_name="db")
    assert not Delivery.objects.filter(event=later, channel="webhook").exists()


def test_a_batch_writes_the_endpoint_s_health_once_a_run_in_the_order_of_outcomes(
        make_workspace, receiver):
    server = receiver([Reply(200)] * 3 + [Reply(400)] + [Reply(200)] * 3)
    hook = endpoint(server.url(), max_retries=0)
    workspace = make_workspace()
    rows = [webhook_row(route(workspace=workspace, datasource_name=f"db{n}")) for n in range(7)]

    with CaptureQueriesContext(connection) as queries:
        outcomes = deliveries_send(delivery_ids=[row.pk for row in rows], channel="webhook")

    assert outcomes == ["delivered"] * 3 + ["failed"] + ["delivered"] * 3
    hook.refresh_from_db()
    assert hook.recent_outcomes == "DDDFDDD"
    assert (hook.consecutive_failures, hook.last_delivery_status) == (0, "delivered")
    writes = [q for q in queries if q["sql"].startswith('UPDATE "channels_app_webhookendpoint"')]
    assert len(writes) == 3  # the first run, the failure, the last run (not seven)


def test_a_run_of_failed_deliveries_deactivates_the_endpoint(make_workspace, receiver,
                                                              settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    server = receiver([Reply(400)] * 2 + [Reply(200)] + [Reply(400)] * 3)
    hook = endpoint(server.url(), max_retries=0)
    workspace = make_workspace()

    outcomes = [delivery_send(delivery_id=webhook_row(route(workspace=workspace,
                                                            datasource_name=f"db{n}")).pk)
                for n in range(5)]

    assert outcomes == [Outcome.FAILED, Outcome.FAILED, Outcome.DELIVERED, Outcome.FAILED,
                        Outcome.FAILED]
    hook.refresh_from_db()
    assert (hook.is_active, hook.consecutive_failures) == (True, 2)  # the 200 ended the run
    delivery_send(delivery_id=webhook_row(route(workspace=workspace, datasource_name="x")).pk)
    hook.refresh_from_db()
    assert hook.is_active is False and hook.consecutive_failures == 3
    assert "3 deliveries in a row failed" in hook.deactivated_reason
    assert Event.objects.filter(event_type__key="system.webhook_endpoint_disabled",
                                priority="high").count() == 1


def test_a_302_is_not_followed(make_workspace, receiver):
    elsewhere = receiver()
    server = receiver([Reply(302, headers={"Location": elsewhere.url("/moved")})])
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED

    row.refresh_from_db()
    assert (row.attempts, row.last_status_code) == (1, 302)
    assert "redirect" in row.last_error
    assert elsewhere.received == [] and elsewhere.connections == 0


def test_a_receiver_that_never_answers_times_out_within_the_limit(make_workspace, receiver,
                                                                  settings):
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = 1
    server = receiver([Reply(hang=True)])
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.RETRYING

    [attempt] = attempts_of(row)
    assert attempt.outcome == "transient" and attempt.status_code is None
    assert "No answer within 1 s" in attempt.error
    assert 1000 <= attempt.duration_ms < 15000  # the 1 s limit, not the receiver's 120 s


def test_an_endpoint_for_queries_in_one_workspace_gets_only_those_events(make_workspace,
                                                                        receiver):
    server = receiver()
    mine, other = make_workspace("Mine"), make_workspace("Other")
    scoped = endpoint(server.url("/scoped"), categories=["queries"], workspace=mine)
    everything = endpoint(server.url("/all"))
    failed_only = endpoint(server.url("/failed"), event_types=["query.query_failed"])
    routing_rule_set(category=Category.objects.get(slug="queries"),
                     channels=["in_app", "webhook"])
    events = {
        "mine_failed": route("query.query_failed", mine, query_name="a"),
        "mine_timeout": route("query.query_timeout", mine, query_name="b"),
        "other_failed": route("query.query_failed", other, query_name="c"),
        "mine_source": route(CRITICAL, mine, datasource_name="d"),
    }

    reached = {name: {int(target) for target in Delivery.objects.filter(
                   event=event, channel="webhook").values_list("target", flat=True)}
               for name, event in events.items()}
    assert reached == {
        "mine_failed": {scoped.pk, everything.pk, failed_only.pk},
        "mine_timeout": {scoped.pk, everything.pk},
        "other_failed": {everything.pk, failed_only.pk},
        "mine_source": {everything.pk},
    }
    for row in Delivery.objects.filter(channel="webhook", target=str(scoped.pk)):
        assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED
    bodies = [r.json() for r in server.received if r.path == "/scoped"]
    assert sorted(b["event_type"] for b in bodies) == ["query.query_failed",
                                                       "query.query_timeout"]
    assert {b["workspace_id"] for b in bodies} == {mine.public_id}


def test_three_low_events_make_one_digest_post_per_endpoint_per_flush(make_workspace,
                                                                     receiver):
    server = receiver()
    hook = endpoint(server.url())
    routing_rule_set(event_type=EventType.objects.get(key="policy.policy_created"),
                     channels=["webhook"])
    workspace = make_workspace()
    events = [route("policy.policy_created", workspace, policy_name=f"p{n}") for n in range(3)]
    assert Delivery.objects.filter(channel="webhook", bucket="15m", status="pending").count() == 3

    first = digest_flush(bucket="15m")

    assert (first.claimed_items, first.digests_enqueued) == (3, 1)
    digest = Delivery.objects.get(channel="webhook", kind="digest")
    assert digest.target == str(hook.pk)
    assert delivery_send(delivery_id=digest.pk) == Outcome.DELIVERED
    [request] = server.received
    body = request.json()
    assert (body["event_type"], body["priority"]) == ("digest", "low")
    assert body["workspace_id"] == workspace.public_id
    assert body["payload"]["count"] == 3
    assert [e["payload"]["policy_name"] for e in body["payload"]["events"]] == ["p0", "p1", "p2"]
    assert all(set(e) == {"event_type", "priority", "timestamp", "workspace_id", "payload"}
               for e in body["payload"]["events"])
    assert request.header("X-Datafi-Event") == "digest"
    assert request.header("webhook-id") == str(digest.pk)
    assert Delivery.objects.filter(event__in=events, status="delivered").count() == 3

    second = digest_flush(bucket="15m")
    assert (second.claimed_items, second.digests_enqueued) == (0, 0)
    assert Delivery.objects.filter(channel="webhook", kind="digest").count() == 1
    assert len(server.received) == 1


def test_slack_gets_a_message_in_the_priority_color_with_the_title(make_workspace, receiver):
    server = receiver()
    hook = endpoint(server.url(), format="slack", secret="")
    row = webhook_row(route(workspace=make_workspace("Ops"), datasource_name="Snowflake"), hook)

    assert delivery_send(delivery_id=row.pk) == Outcome.DELIVERED

    body = server.received[0].json()
    assert body["text"] == "[Critical] Connection lost: Snowflake"
    [attachment] = body["attachments"]
    assert attachment["color"] == "#dc2626"
    assert attachment["title"] == "Connection lost: Snowflake"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Event type"] == "data_source.connection_lost"
    assert fields["datasource_name"] == "Snowflake" and fields["Workspace"] == "Ops"
    assert server.received[0].header("X-Datafi-Signature") is None  # no secret, no signature


def test_pagerduty_gets_a_trigger_with_severity_and_a_stable_dedup_key(make_workspace,
                                                                        receiver):
    server = receiver([Reply(500)])
    hook = endpoint(server.url(), format="pagerduty", routing_key="R0UTING-KEY")
    workspace = make_workspace()
    event = route(workspace=workspace, datasource_name="Snowflake")
    row = webhook_row(event, hook)

    assert [send_when_due(row.pk) for _ in range(2)] == [Outcome.RETRYING, Outcome.DELIVERED]

    first, second = (r.json() for r in server.received)
    assert first == second
    assert first["routing_key"] == "R0UTING-KEY"
    assert first["event_action"] == "trigger"
    assert first["dedup_key"] == f"datafi-{event.pk}"
    assert first["payload"]["severity"] == "critical"
    assert first["payload"]["summary"] == "Connection lost: Snowflake"
    assert first["payload"]["source"] == workspace.public_id
    assert first["payload"]["custom_details"] == {"datasource_name": "Snowflake"}


def test_an_endpoint_deleted_before_the_send_fails_the_delivery(make_workspace, receiver):
    server = receiver()
    hook = endpoint(server.url())
    row = webhook_row(route(workspace=make_workspace(), datasource_name="db"), hook)
    WebhookEndpoint.objects.filter(pk=hook.pk).delete()

    assert delivery_send(delivery_id=row.pk) == Outcome.FAILED
    row.refresh_from_db()
    assert "deleted" in row.last_error and server.received == []


def test_a_hand_retry_of_a_digest_event_is_refused(make_workspace, receiver):
    endpoint(receiver().url())
    routing_rule_set(event_type=EventType.objects.get(key="policy.policy_created"),
                     channels=["webhook"])
    event = route("policy.policy_created", make_workspace(), policy_name="p")
    digest_flush(bucket="15m")
    item = Delivery.objects.get(event=event, channel="webhook")
    with pytest.raises(DeliveryNotRetryable):
        delivery_replay(delivery_id=item.pk)
    with pytest.raises(DeliveryNotRetryable):
        delivery_retry(delivery_id=item.pk)
