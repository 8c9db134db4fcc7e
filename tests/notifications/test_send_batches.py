"""Sends in batches over kept connections (issue 21): few SMTP connections for many
messages, reconnection, settings changes, one refused recipient, lanes for a large
audience, and the email each recipient gets is the one built for them alone."""

import email
import email.policy
import random
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app import email_batch, emails
from channels_app.services.email import email_settings_update
from channels_app.transports.smtp import envelope_of
from channels_app.transports.smtp_pool import pool
from events import emit
from events.ack_links import delivery_id_from
from events.models import Event, EventType
from notifications.deliveries import enqueue
from notifications.deliveries.send import deliveries_send
from notifications.models import Delivery, DeliveryAttempt, RoutingRule
from notifications.routing.route import event_route
from notifications.tasks import event_deliveries_send
from tests.channels_app.smtp_servers import HOST
from tests.support import wait_until

from .conftest import SENDER

CRITICAL = "data_source.connection_lost"


@pytest.fixture(autouse=True)
def fresh_connections():
    """This process's kept SMTP connections, closed before and after each test."""
    pool.close_all()
    yield
    pool.close_all()


@pytest.fixture
def sends(db, make_workspace):
    """``sends(addresses)``: pending immediate email deliveries of one critical event."""

    def make(addresses, *, event=None):
        if event is None:
            workspace = make_workspace(members=1)
            RoutingRule.objects.update_or_create(
                event_type=EventType.objects.get(key=CRITICAL), defaults={"channels": ["in_app"]})
            event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"})
            event_route(event_id=event.pk)
        return [Delivery.objects.create(event=event, channel="email", target=address,
                                        priority="critical", next_attempt_at=timezone.now())
                for address in addresses]

    return make


def addresses(count, domain="example.com"):
    return [f"person{n}@{domain}" for n in range(count)]


def statuses(rows):
    return [Delivery.objects.get(pk=row.pk).status for row in rows]


@pytest.mark.parametrize("channel", ["email", None], ids=["message-names-channel", "older-message"])
def test_a_batch_goes_over_one_connection_each_send_recorded_with_its_own_message(
        sends, smtp_server, email_on, channel):
    server = smtp_server()
    email_on(server)
    rows = sends(addresses(30))

    outcomes = deliveries_send(delivery_ids=[row.pk for row in rows], channel=channel)

    assert outcomes == ["delivered"] * 30
    assert server.connections == 1
    assert statuses(rows) == ["delivered"] * 30
    assert set(DeliveryAttempt.objects.filter(delivery__in=rows).values_list(
        "number", "outcome")) == {(1, "delivered")}
    assert DeliveryAttempt.objects.filter(delivery__in=rows).count() == 30
    by_address = {r.rcpt_tos[0]: r for r in server.received}
    assert sorted(by_address) == sorted(addresses(30))  # each once
    for row in rows:  # its own To, Message-ID and Acknowledge link
        message = by_address[row.target].message
        assert message["To"] == row.target
        assert message["Message-ID"] == emails.make_message_id(row.pk, SENDER)
        token = re.search(r"/acknowledge/([^/\s]+)/", message.get_body(("plain",)).get_content())
        assert delivery_id_from(token.group(1)) == str(row.pk)
        assert "Snowflake" in message["Subject"]


def test_a_send_reads_its_rows_only_in_its_claim_and_the_email_settings_once(
        postgres, sends, smtp_server, email_on):
    server = smtp_server()
    email_on(server)
    warm, *rows = sends(addresses(4))
    deliveries_send(delivery_ids=[warm.pk], channel="email")  # the connection opened

    with CaptureQueriesContext(connection) as queries:
        assert deliveries_send(delivery_ids=[row.pk for row in rows], channel="email") == [
            "delivered"] * 3

    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in reads if "notifications_delivery" in sql or "events_event" in sql]
    assert len([sql for sql in reads if "channels_app_emailsettings" in sql]) == 1
    assert len(queries) == 2 + 3  # the settings, the claim, then each send's record
    assert len(server.received) == 4


def test_a_delivery_named_twice_in_a_message_is_sent_once(sends, smtp_server, email_on):
    server = smtp_server()
    email_on(server)
    one, two = sends(addresses(2))

    outcomes = deliveries_send(delivery_ids=[one.pk, two.pk, one.pk], channel="email")

    assert outcomes == ["delivered", "delivered", "delivered"]  # each id's outcome
    assert sorted(r.rcpt_tos[0] for r in server.received) == addresses(2)
    assert DeliveryAttempt.objects.filter(delivery=one).count() == 1


def test_a_message_naming_another_channel_claims_nothing(sends, smtp_server, email_on):
    email_on(smtp_server())
    rows = sends(addresses(2))

    assert deliveries_send(delivery_ids=[row.pk for row in rows], channel="webhook") == [
        "skipped"] * 2

    assert statuses(rows) == ["pending"] * 2
    assert not DeliveryAttempt.objects.filter(delivery__in=rows).exists()


def test_a_connection_carries_at_most_its_cap_of_messages_then_quits(
        sends, smtp_server, email_on, settings):
    settings.SMTP_MAX_MESSAGES_PER_CONNECTION = 10
    server = smtp_server()
    email_on(server)
    rows = sends(addresses(25))

    assert deliveries_send(delivery_ids=[row.pk for row in rows]) == ["delivered"] * 25

    assert server.connections == 3
    wait_until(lambda: server.open_connections == 1, timeout=30,
               message="the two full connections to be closed")
    assert len(server.received) == 25


def test_a_connection_the_server_dropped_is_replaced_without_failing_a_send(
        sends, smtp_server, email_on):
    server = smtp_server(idle_timeout=0.5)
    email_on(server)
    first, second = sends(addresses(2))

    assert deliveries_send(delivery_ids=[first.pk]) == ["delivered"]
    wait_until(lambda: server.open_connections == 0, timeout=30,
               message="the server to drop the idle connection")
    assert deliveries_send(delivery_ids=[second.pk]) == ["delivered"]

    assert server.connections == 2
    assert list(DeliveryAttempt.objects.filter(delivery=second).values_list(
        "number", "outcome")) == [(1, "delivered")]
    assert sorted(r.rcpt_tos[0] for r in server.received) == addresses(2)


def test_changed_settings_are_used_by_the_next_send_on_a_new_connection(
        sends, smtp_server, email_on):
    old, new = smtp_server(), smtp_server()
    email_on(old)
    first, second = sends(addresses(2))
    assert deliveries_send(delivery_ids=[first.pk]) == ["delivered"]

    email_settings_update(values={"host": HOST, "port": new.port})
    assert deliveries_send(delivery_ids=[second.pk]) == ["delivered"]

    assert [r.rcpt_tos for r in old.received] == [[first.target]]
    assert [r.rcpt_tos for r in new.received] == [[second.target]]
    wait_until(lambda: old.open_connections == 0, timeout=30,
               message="the connection of the old settings to be closed")


def test_a_new_from_address_reaches_the_rest_of_an_audience_already_being_sent(
        sends, smtp_server, email_on):
    """The message prepared for an event's many recipients is kept across batches, but
    never past a change of the sender."""
    server = smtp_server()
    email_on(server)
    first = sends(addresses(3))
    rest = sends(addresses(6)[3:], event=first[0].event)
    assert deliveries_send(delivery_ids=[row.pk for row in first]) == ["delivered"] * 3

    email_settings_update(values={"from_email": "alerts@example.org"})
    assert deliveries_send(delivery_ids=[row.pk for row in rest]) == ["delivered"] * 3

    by_address = {r.rcpt_tos[0]: r.message for r in server.received}
    assert {by_address[row.target]["From"].addresses[0].addr_spec for row in first} == {SENDER}
    assert {by_address[row.target]["From"].addresses[0].addr_spec for row in rest} == {
        "alerts@example.org"}
    assert {by_address[row.target]["Message-ID"] for row in rest} == {
        emails.make_message_id(row.pk, "alerts@example.org") for row in rest}


def test_one_refused_recipient_in_a_batch_fails_alone(sends, smtp_server, email_on):
    server = smtp_server()
    server.handler.refused.add("person2@example.com")
    email_on(server)
    rows = sends(addresses(5))

    outcomes = deliveries_send(delivery_ids=[row.pk for row in rows])

    assert outcomes == ["delivered", "delivered", "failed", "delivered", "delivered"]
    refused = Delivery.objects.get(pk=rows[2].pk)
    assert (refused.status, refused.last_status_code) == ("failed", 550)
    assert "550" in refused.last_error and "person2@example.com" in refused.last_error
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        a for a in addresses(5) if a != "person2@example.com"]
    assert server.connections == 1  # RSET, and the connection carried on


def test_a_large_audience_is_sent_in_lanes_each_member_once(
        db, make_workspace, smtp_server, email_on, settings, monkeypatch,
        django_capture_on_commit_callbacks):
    """More sends of one event on one channel than a batch: ``DATAFI_SEND_LANES`` lane
    tasks, each claiming a batch and queuing its continuation before sending it."""
    settings.DATAFI_SEND_BATCH = settings.DATAFI_SEND_LANE_BATCH = 3
    settings.DATAFI_SEND_LANES = 2
    server = smtp_server()
    email_on(server)
    RoutingRule.objects.create(event_type=EventType.objects.get(key=CRITICAL),
                               channels=["email"])
    workspace = make_workspace(members=10)
    queued = []
    monkeypatch.setattr(enqueue.current_app, "send_task",
                        lambda name, **options: queued.append((name, options)))

    with django_capture_on_commit_callbacks(execute=True):
        event = emit(CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"})
        event_route(event_id=event.pk)

    # On the bulk lane: the sender's processes stay free for the next critical event.
    lane = {"event_id": str(event.pk), "channel": "email", "queue": "bulk"}
    assert [(name, options["kwargs"], options["queue"]) for name, options in queued] == [
        ("notifications.event_deliveries_send", lane, "bulk")] * 2
    runs = 0
    while queued:  # what the send workers do, in queue order
        _, options = queued.pop(0)
        event_deliveries_send(**options["kwargs"])
        runs += 1
    assert runs == 5  # 2 lanes; full batches queued a continuation each: 3 + 3 + 3 + 1 + 0
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(
        m.email for m in workspace.people)
    assert set(Delivery.objects.filter(event=event).values_list("status", flat=True)) == {
        "delivered"}


@pytest.mark.parametrize("title", ["Snowflake lost", "数据源 Über ünïcode " * 6])
def test_the_prepared_email_is_the_one_built_for_that_recipient(db, make_workspace, title):
    workspace = make_workspace(members=1)
    event = Event.objects.select_related("event_type__category", "workspace").get(pk=emit(
        CRITICAL, workspace=workspace,
        payload={"datasource_name": "Snöwflake " * 20, "host": "a&b <c>"}).pk)
    common = {"event": event, "title": title, "from_email": SENDER, "from_name": "Datafi",
              "app_url": "http://app.example/?a=1&b=2", "unsubscribe_url": "http://u.example/",
              "date": timezone.now()}
    prepared = email_batch.prepare_event_email(**common, acknowledge=True)
    for to in ("ops@example.com", "Ünïcode <ops@example.com>"):
        delivery_id = uuid.uuid4()
        values = {"to": to, "message_id": emails.make_message_id(delivery_id, SENDER),
                  "acknowledge_url": f"http://app.example/acknowledge/{delivery_id}.x-y_z/"}
        if to.startswith("Ü"):  # not a plain address: built the ordinary way (and refused)
            with pytest.raises(ValueError, match="recipient address"):
                prepared.envelope(**values)
            continue

        fast = prepared.envelope(**values)
        slow = envelope_of(emails.build_event_email(**common, **values))

        assert fast.recipients == slow.recipients == (to,)
        assert fast.message_id == slow.message_id
        parsed = [email.message_from_bytes(e.data, policy=email.policy.default)
                  for e in (fast, slow)]
        assert [p.items() for p in parsed[0].walk()][1:] == [
            p.items() for p in parsed[1].walk()][1:]
        boundary = re.compile(r'boundary="[^"]+"')
        assert [(k, boundary.sub("", v)) for k, v in parsed[0].items()] == [
            (k, boundary.sub("", v)) for k, v in parsed[1].items()]
        for kind in ("plain", "html"):
            assert (parsed[0].get_body((kind,)).get_content()
                    == parsed[1].get_body((kind,)).get_content())
        assert max(len(line) for line in fast.data.split(b"\r\n")) <= 78
        assert b"\n" not in fast.data.replace(b"\r\n", b"")


#: Titles the email package writes as they are, folds, encodes, or that hold the
#: skeleton's own markers.
TITLES = [
    "Snowflake lost", 'He said "hi" (twice); a\\b <c> d@e, f:g', "50% = half? =?utf-8?q?x?=",
    "x" * 64, "x" * 65, "word " * 20, "Über ünïcode", "recipient@to.invalid",
    "<message-id@to.invalid>", "DATAFI-SUBJECT-MARKER", "datafi-text-body-marker",
    "Sat, 01 Jan 2000 00:00:00 +0000", "tab\tand  spaces ", "",
]


def random_titles(count: int, seed: int = 21) -> list[str]:
    """Titles of printable ASCII punctuation, letters, spaces and a few non-ASCII letters."""
    alphabet = 'aZ09 "()<>@,;:\\.[]=?_-~!#$%&*+/{|}^`\'ü'
    chooser = random.Random(seed)
    return ["".join(chooser.choice(alphabet) for _ in range(chooser.randint(1, 90)))
            for _ in range(count)]


def test_every_prepared_email_is_the_one_built_header_for_header(db, make_workspace):
    """Whatever the title (kept as the email package writes it, or folded and encoded by
    it), the prepared message is the built one: every header of every part as written on
    the wire (but the MIME boundary), and the same bodies (quoted-printable may break the
    lines elsewhere)."""
    workspace = make_workspace(members=1)
    event = Event.objects.select_related("event_type__category", "workspace").get(pk=emit(
        CRITICAL, workspace=workspace, payload={"datasource_name": "Snowflake"}).pk)
    boundary = re.compile(rb'={15}\d+==')
    for title in TITLES + random_titles(150):
        common = {"event": event, "title": title, "from_email": SENDER,
                  "from_name": "Datafi Alerts", "app_url": "http://app.example/",
                  "unsubscribe_url": "http://u.example/", "date": timezone.now()}
        delivery_id = uuid.uuid4()
        values = {"to": "ops@example.com",
                  "message_id": emails.make_message_id(delivery_id, SENDER),
                  "acknowledge_url": f"http://app.example/acknowledge/{delivery_id}/"}

        fast = email_batch.prepare_event_email(**common, acknowledge=True).envelope(**values)
        slow = envelope_of(emails.build_event_email(**common, **values))

        raw = [email.message_from_bytes(boundary.sub(b"B", e.data), policy=email.policy.compat32)
               for e in (fast, slow)]
        assert [p.items() for p in raw[0].walk()] == [p.items() for p in raw[1].walk()], title
        assert [p.get_payload(decode=True) for p in raw[0].walk()] == [
            p.get_payload(decode=True) for p in raw[1].walk()]
        assert fast.recipients == slow.recipients and fast.message_id == slow.message_id
        assert max(len(line) for line in fast.data.split(b"\r\n")) <= 78


def test_an_event_email_costs_no_message_building_once_its_sender_was_seen(
        db, make_workspace, monkeypatch):
    """Only the first event of a sender builds a MIME message (its skeleton); the next
    events' emails are their bodies put into it."""
    workspace = make_workspace(members=1)
    events = [Event.objects.select_related("event_type__category", "workspace").get(pk=emit(
        CRITICAL, workspace=workspace, payload={"datasource_name": f"db{i}"}).pk)
        for i in range(3)]
    built = []
    assemble = emails.assemble_message
    monkeypatch.setattr(emails, "assemble_message",
                        lambda **kwargs: built.append(kwargs["subject"]) or assemble(**kwargs))
    sender = {"from_email": f"first-seen-{uuid.uuid4().hex[:8]}@example.com",
              "from_name": "Datafi",
              "app_url": "http://app.example/", "unsubscribe_url": None, "acknowledge": False}

    messages = [email_batch.prepare_event_email(event=event, title=f"Lost db{i}", **sender)
                .envelope(to="ops@example.com", message_id=f"<{i}@example.com>",
                          acknowledge_url=None) for i, event in enumerate(events)]

    assert len(built) == 1  # the sender's skeleton, once
    assert [email.message_from_bytes(m.data, policy=email.policy.default)["Subject"]
            for m in messages] == ["[Critical] Lost db0", "[Critical] Lost db1",
                                   "[Critical] Lost db2"]
