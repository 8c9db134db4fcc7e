"""The emails a receiver reads: built from real events, serialized, parsed back as a mail client
would, and checked header by header and body by body."""

import email
import email.policy
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from channels_app.emails import build_digest_email, build_event_email, make_message_id
from events import emit
from events.catalog import Priority
from events.models import Event, EventType
from events.templating import render_title

FROM = {"from_email": "alerts@datafi.example", "from_name": "Datafi Alerts"}
APP_URL = "https://app.datafi.example/"
OCCURRED = datetime(2025, 3, 4, 9, 15, 7, tzinfo=UTC)
TRICKY = "O'Brien & Co <prod>"


def fetch(event) -> Event:
    return Event.objects.select_related("event_type__category", "workspace").get(pk=event.pk)


def title_of(event: Event) -> str:
    return render_title(event.event_type.title_template, event.payload,
                        fallback=event.event_type.label)


def parse(message) -> email.message.EmailMessage:
    """What a receiver gets: the serialized bytes, parsed by the standard library."""
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)


def bodies(received) -> tuple[str, str]:
    assert received.get_content_type() == "multipart/alternative"
    return (received.get_body(("plain",)).get_content(),
            received.get_body(("html",)).get_content())


def raw_headers(message) -> list[str]:
    head = message.as_bytes().split(b"\r\n\r\n", 1)[0]
    return head.decode("ascii").split("\r\n")  # raises if a header is not 7-bit clean


@pytest.fixture
def connection_lost(db, make_workspace):
    workspace = make_workspace("Analytics EU")
    event = emit("data_source.connection_lost", workspace=workspace, occurred_at=OCCURRED,
                 payload={"datasource_name": "Production Snowflake",
                          "error": {"retries": [1, 2], "code": "08001"},
                          "host": "acme.snowflakecomputing.com", "port": 443,
                          "secure": True, "note": None})
    return fetch(event)


def event_email(event, **overrides):
    arguments = {"event": event, "title": title_of(event), "to": "bob@example.com",
                 "message_id": make_message_id(uuid.uuid4(), FROM["from_email"]),
                 "app_url": APP_URL, "link_path": f"/notifications/{event.pk}", **FROM}
    arguments.update(overrides)
    return build_event_email(**arguments)


# --- colors --------------------------------------------------------------------------------

def test_every_priority_has_its_color():
    assert Priority.BADGE_COLORS == {
        "critical": "#dc2626", "high": "#c2410c", "medium": "#a16207", "low": "#2563eb",
        "info": "#6b7280",
    }
    assert set(Priority.BADGE_COLORS) == set(Priority.VALUES)


# --- one event -----------------------------------------------------------------------------

def test_event_email_headers(connection_lost, django_assert_num_queries):
    message_id = make_message_id("3f2a9c1e-delivery", "alerts@datafi.example")
    with django_assert_num_queries(0):
        message = event_email(connection_lost, message_id=message_id)

    received = parse(message)

    assert received["Subject"] == "[Critical] Connection lost: Production Snowflake"
    [sender] = received["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Datafi Alerts", "alerts@datafi.example")
    assert [a.addr_spec for a in received["To"].addresses] == ["bob@example.com"]
    assert received["Message-ID"] == message_id == "<3f2a9c1e-delivery.datafi@datafi.example>"
    assert abs(received["Date"].datetime - timezone.now()) < timedelta(minutes=5)
    assert received["Date"].datetime.utcoffset() == timedelta(0)
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["X-Auto-Response-Suppress"] == "All"
    assert received["X-Datafi-Event"] == "data_source.connection_lost"
    assert received["List-Unsubscribe"] is None


def test_event_email_bodies_show_the_event(connection_lost):
    text, html = bodies(parse(event_email(connection_lost)))
    link = f"https://app.datafi.example/notifications/{connection_lost.pk}"
    workspace = connection_lost.workspace

    for body in (text, html):
        assert "Connection lost: Production Snowflake" in body
        assert "Connection lost" in body and "data_source.connection_lost" in body
        assert "Data Sources" in body
        assert "Critical" in body
        assert "Analytics EU" in body and workspace.public_id in body
        assert "2025-03-04 09:15:07 UTC" in body
        assert link in body
        for name in ("datasource_name", "error", "host", "port", "secure", "note"):
            assert name in body
        assert "acme.snowflakecomputing.com" in body
        assert "443" in body and "true" in body and "null" in body
    assert '{"code":"08001","retries":[1,2]}' in text
    assert "{&quot;code&quot;:&quot;08001&quot;,&quot;retries&quot;:[1,2]}" in html
    assert "#dc2626" in html
    assert f'href="{link}"' in html
    assert "<" not in text


@pytest.mark.parametrize("priority", Priority.VALUES)
def test_event_email_carries_the_priority_color(db, priority):
    EventType.objects.filter(key="query.query_failed").update(priority_override=priority)
    event = fetch(emit("query.query_failed", payload={"query_name": "nightly"}))

    received = parse(event_email(event))

    assert received["Subject"] == f"[{priority.capitalize()}] Query failed: nightly"
    _, html = bodies(received)
    assert Priority.BADGE_COLORS[priority] in html
    others = set(Priority.BADGE_COLORS.values()) - {Priority.BADGE_COLORS[priority]}
    # gray is also the footer's text color
    assert not {color for color in others if color in html} - {Priority.BADGE_COLORS["info"]}


def test_titles_and_payloads_are_escaped_once_in_html_and_raw_in_text(db, make_workspace):
    workspace = make_workspace(TRICKY)
    event = fetch(emit("data_source.connection_lost", workspace=workspace,
                       payload={"datasource_name": TRICKY, "owner": TRICKY}))

    received = parse(event_email(event, title=f"Connection lost: {TRICKY}"))

    assert received["Subject"] == f"[Critical] Connection lost: {TRICKY}"
    text, html = bodies(received)
    assert text.count(TRICKY) == 4  # title, workspace, two payload fields
    assert not re.search(r"&(#x?[0-9a-f]+|[a-z]+);", text, re.IGNORECASE)
    escaped = "O&#x27;Brien &amp; Co &lt;prod&gt;"
    assert html.count(escaped) == 5  # <title>, heading, workspace, two payload fields
    assert TRICKY not in html and "<prod>" not in html and "&amp;amp;" not in html


def test_a_title_cannot_inject_a_header_or_recipient(db, make_workspace):
    event = fetch(emit("data_source.connection_lost", workspace=make_workspace(),
                       payload={"datasource_name": "X\r\nBcc: evil@x", "k\r\nBcc: a@b": "v"}))
    message = event_email(event, title="X\r\nBcc: evil@x\x00\x0b\u2028Reply-To: evil@x",
                          from_name="Datafi\r\nBcc: evil@x")

    received = parse(message)

    assert received.get_all("Bcc") is None and received.get_all("Reply-To") is None
    assert len(received.get_all("To")) == 1
    assert [a.addr_spec for a in received["To"].addresses] == ["bob@example.com"]
    assert received["Subject"] == "[Critical] X Bcc: evil@x Reply-To: evil@x"
    assert received["From"].addresses[0].display_name == "Datafi Bcc: evil@x"
    assert received["From"].addresses[0].addr_spec == "alerts@datafi.example"
    assert not [line for line in raw_headers(message) if line.lower().startswith("bcc")]
    assert received.defects == []
    text, _ = bodies(received)
    assert "\x00" not in text and "\x0b" not in text


def test_a_recipient_that_is_not_one_address_is_refused(connection_lost):
    for bad in ("bob@example.com\r\nBcc: evil@x", "bob@example.com, eve@example.com", "bob"):
        with pytest.raises(ValueError, match="recipient address"):
            event_email(connection_lost, to=bad)


def test_long_unicode_subject_is_encoded_and_folded(db):
    name = "Über-Daten 数据源 " * 12
    event = fetch(emit("data_source.connection_lost", payload={"datasource_name": name}))

    message = event_email(event, from_name="Datafi Überwachung")
    received = parse(message)

    assert received["Subject"] == "[Critical] " + title_of(event)
    assert received["Subject"].startswith("[Critical] Connection lost: Über-Daten 数据源")
    assert received["From"].addresses[0].display_name == "Datafi Überwachung"
    assert all(len(line) <= 78 for line in raw_headers(message))


def test_message_id_is_stable_for_one_delivery(connection_lost):
    delivery_id = uuid.uuid4()
    first = make_message_id(delivery_id, "alerts@datafi.example")

    assert first == make_message_id(delivery_id, "datafi.example")
    assert first == f"<{delivery_id}.datafi@datafi.example>"
    assert first != make_message_id(uuid.uuid4(), "datafi.example")
    retries = [parse(event_email(connection_lost, message_id=first)) for _ in range(2)]
    assert [r["Message-ID"] for r in retries] == [first, first]


def test_list_unsubscribe_only_when_a_preferences_url_is_given(connection_lost):
    url = "https://app.datafi.example/preferences"

    received = parse(event_email(connection_lost, unsubscribe_url=url))

    assert received["List-Unsubscribe"] == f"<{url}>"
    text, html = bodies(received)
    assert url in text and f'href="{url}"' in html


# --- digests -------------------------------------------------------------------------------

def digest_email(pairs, *, bucket_priority="medium", **overrides):
    arguments = {"bucket_priority": bucket_priority, "events": pairs, "to": "bob@example.com",
                 "message_id": make_message_id(uuid.uuid4(), "datafi.example"),
                 "app_url": APP_URL, **FROM}
    arguments.update(overrides)
    return build_digest_email(**arguments)


def emitted(key, workspace=None, **payload) -> tuple[Event, str]:
    event = fetch(emit(key, workspace=workspace, payload=payload))
    return event, title_of(event)


def test_digest_groups_by_priority_then_category_with_counts(db, make_workspace,
                                                             django_assert_num_queries):
    workspace = make_workspace("Analytics")
    pairs = [
        emitted("user.user_deactivated", workspace, email="ann@example.com"),
        emitted("query.long_running_query", workspace, query_name="q1"),
        emitted("query.long_running_query", workspace, query_name=TRICKY),
        emitted("user.role_changed", workspace, email="bo@example.com"),
        emitted("query.long_running_query", workspace, query_name="q3"),
    ]
    message_id = make_message_id("digest-1", "datafi.example")
    with django_assert_num_queries(0):
        message = digest_email(pairs, message_id=message_id)

    received = parse(message)

    assert received["Subject"] == "Datafi digest: 5 notifications (medium)"
    assert received["X-Datafi-Event"] == "digest"
    assert received["Message-ID"] == message_id
    assert received["Auto-Submitted"] == "auto-generated"
    assert [a.addr_spec for a in received["To"].addresses] == ["bob@example.com"]
    text, html = bodies(received)
    sections = ["Medium (5)", "Queries (3)", "Long-running query: q1",
                f"Long-running query: {TRICKY}", "Long-running query: q3", "Users (2)",
                "User deactivated: ann@example.com", "Role changed: bo@example.com"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    assert workspace.public_id in text
    html_sections = [s.replace(TRICKY, "O&#x27;Brien &amp; Co &lt;prod&gt;") for s in sections]
    assert [html.index(s) for s in html_sections] == sorted(html.index(s) for s in html_sections)
    assert Priority.BADGE_COLORS["medium"] in html
    assert "<prod>" not in html
    assert not re.search(r"&(#x?[0-9a-f]+|[a-z]+);", text, re.IGNORECASE)


def test_digest_orders_priorities_most_urgent_first(db):
    EventType.objects.filter(key="system.platform_update_available").update(
        priority_override="info")
    pairs = [emitted("system.platform_update_available", version="2.1"),
             emitted("policy.policy_created", policy_name="PII"),
             emitted("system.scheduled_maintenance", window="Sunday")]

    text, html = bodies(parse(digest_email(pairs)))

    order = ["Medium (1)", "System (1)", "Scheduled maintenance: Sunday", "Low (1)",
             "Policies (1)", "Policy created: PII", "Info (1)", "Platform update available: 2.1"]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    assert text.count("System (1)") == 2
    assert text.index("System (1)", text.index("Info (1)")) < text.index("Platform update")
    for priority in ("medium", "low", "info"):
        assert Priority.BADGE_COLORS[priority] in html


def test_digest_subject_is_singular_for_one_event(db):
    received = parse(digest_email([emitted("policy.policy_updated", policy_name="PII")],
                                  bucket_priority="low"))

    assert received["Subject"] == "Datafi digest: 1 notification (low)"
    text, _ = bodies(received)
    assert "Low (1)" in text and "Policies (1)" in text and "Policy updated: PII" in text


def test_an_empty_digest_is_refused():
    with pytest.raises(ValueError, match="at least one event"):
        digest_email([])
