"""The signed one-click Acknowledge link of critical and high emails: a GET only shows a
confirmation page (mail scanners follow links), the POST acknowledges for everyone, and a
tampered or expired link gets a page that says so."""

import re
import time

import pytest
from django.core import signing
from django.test import Client

from events.ack_links import SALT
from events.models import EventType
from notifications.deliveries.send import delivery_send
from notifications.models import BUCKET_BY_PRIORITY, Delivery, RoutingRule
from notifications.services.digests import digest_flush
from tests.support import api_client_for, emit_and_route

LOST = "data_source.connection_lost"
LINK = re.compile(r"http://testserver/acknowledge/[^/\s\"]+/")


@pytest.fixture
def emailed(make_workspace, make_user, smtp_server, email_on, settings):
    """Send an event's emails to a real SMTP server: ``emailed(event_type, **payload)``
    returns the messages and the deliveries."""
    settings.DATAFI_APP_URL = "http://testserver/"
    server = smtp_server()
    email_on(server)
    person = make_user("oncall", email="oncall@datafi.test")
    team = make_workspace("Ops", users=[person])
    team.person = person

    def send(event_type, **payload):
        RoutingRule.objects.update_or_create(
            event_type=EventType.objects.get(key=event_type),
            defaults={"channels": ["in_app", "email"], "extra_emails": ["list@datafi.test"]})
        event = emit_and_route(event_type, team, **payload)
        rows = list(Delivery.objects.filter(event=event, channel="email", bucket="")
                    .order_by("target"))
        assert [delivery_send(delivery_id=row.pk) for row in rows] == ["delivered"] * len(rows)
        return event, rows, list(server.received)

    send.team = team
    return send


def link_in(message) -> str:
    text_link = LINK.search(message.text()).group(0)
    assert text_link in message.html()
    return text_link.removeprefix("http://testserver")


def test_a_critical_email_links_to_a_page_whose_get_only_asks_to_confirm(emailed):
    event, rows, messages = emailed(LOST, datasource_name="Warehouse")
    path = link_in(messages[0])
    browser = Client()

    for _ in range(2):  # a scanner, a preview: nothing happens
        page = browser.get(path)
        assert page.status_code == 200
        assert b"Acknowledge</button>" in page.content
        assert b"Connection lost: Warehouse" in page.content
    event.refresh_from_db()
    assert event.acknowledged_at is None

    done = browser.post(path)

    assert done.status_code == 200 and b"Acknowledged." in done.content
    event.refresh_from_db()
    assert event.acknowledged_at is not None
    seen = api_client_for(emailed.team.person).get("/api/notifications/").json()["results"][0]
    assert seen["acknowledged_by"] == event.acknowledged_by_name


def test_a_distribution_lists_link_acknowledges_as_its_address(emailed):
    event, rows, messages = emailed(LOST, datasource_name="Warehouse")
    to_list = next(m for m in messages if m.message["To"] == "list@datafi.test")

    Client().post(link_in(to_list))

    event.refresh_from_db()
    assert (event.acknowledged_by, event.acknowledged_by_name) == (None, "list@datafi.test")
    again = Client().post(link_in(messages[0]))
    assert b"Already acknowledged by list@datafi.test" in again.content


def test_only_critical_and_high_emails_carry_the_link(emailed):
    event, rows, _ = emailed("data_source.schema_change", datasource_name="Warehouse")
    assert not rows  # an info event waits for its digest
    digest_flush(bucket=BUCKET_BY_PRIORITY[event.priority])
    digests = Delivery.objects.filter(kind="digest", channel="email")
    assert [delivery_send(delivery_id=d.pk) for d in digests] == ["delivered"] * 2

    _, _, messages = emailed("query.query_failed", query_name="q")  # high

    digest_texts = [m.text() for m in messages if "digest" in m.message["Subject"]]
    assert len(digest_texts) == 2 and not any(LINK.search(text) for text in digest_texts)
    assert len([m for m in messages if LINK.search(m.text())]) == 2


def test_a_tampered_link_is_refused_with_a_page_that_says_so(emailed):
    event, _, messages = emailed(LOST, datasource_name="Warehouse")
    path = link_in(messages[0])
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]

    for method in ("get", "post"):
        page = getattr(Client(), method)(tampered)
        assert page.status_code == 400
        assert b"This link does not work" in page.content
        assert b"not valid" in page.content
    event.refresh_from_db()
    assert event.acknowledged_at is None


class _EightDaysAgo(signing.TimestampSigner):
    def timestamp(self):
        return signing.b62_encode(int(time.time()) - 8 * 24 * 3600)


def test_a_link_older_than_seven_days_has_expired(emailed):
    event, rows, _ = emailed(LOST, datasource_name="Warehouse")
    old = _EightDaysAgo(salt=SALT).sign(str(rows[0].pk))

    page = Client().post(f"/acknowledge/{old}/")

    assert page.status_code == 410
    assert b"This link has expired" in page.content and b"7 days" in page.content
    event.refresh_from_db()
    assert event.acknowledged_at is None


def test_a_link_signed_for_something_else_is_not_a_link(emailed):
    _, rows, _ = emailed(LOST, datasource_name="Warehouse")
    other = signing.TimestampSigner(salt="another.purpose").sign(str(rows[0].pk))

    assert Client().get(f"/acknowledge/{other}/").status_code == 400


def test_the_post_needs_the_pages_csrf_token(emailed):
    event, _, messages = emailed(LOST, datasource_name="Warehouse")
    strict = Client(enforce_csrf_checks=True)

    assert strict.post(link_in(messages[0])).status_code == 403
    page = strict.get(link_in(messages[0]))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    assert strict.post(link_in(messages[0]),
                       {"csrfmiddlewaretoken": token.decode()}).status_code == 200
    event.refresh_from_db()
    assert event.acknowledged_at is not None
