"""Title templates: plain text, a safe subset checked when saved; a failure costs the title only."""

import logging

import pytest
from django.core.exceptions import ValidationError

from events.catalog import EVENT_TYPES, register_event_type
from events.models import Category, EventType
from events.templating import render_title, validate_title_template
from notifications.models import Notification
from notifications.services.digests import digest_flush
from tests.support import api_client_for, emit_and_route

# Each made routing (or a digest flush) fail before: refused now when saved, and a label
# when one was stored anyway (before this check existed, or by a queryset update).
BAD_TEMPLATES = [
    "Job started {{ started_at|timesince }} ago",
    "{% include 'admin/base.html' %}",
    "{% extends 'admin/base.html' %}",
    "{% load static %}{% static 'x' %}",
    "{% url 'nope' %}",
    "{% ssi '/etc/passwd' %}",
    "{% debug %}",
    "{% if n %}yes{% endif %}",
    "{{ n|divisibleby:d }}",
    "{{ n|add:d }}",  # a payload value as a filter argument
    "{{ n|floatformat:100000 }}",
    "{{ n|stringformat:'09999999d' }}",
    "{{ n|ljust:'99999999' }}",
]
PAYLOAD = {"started_at": "2026-11-27T10:00:00Z", "n": 4, "d": 0}


def custom_type(template: str, *, priority: str = "critical") -> EventType:
    """An admin-made type whose template skipped validation (stored before the check)."""
    return EventType.objects.create(
        category=Category.objects.get(slug="system"), name="job_started", label="Job started",
        title_template=template, default_priority=priority,
    )


@pytest.mark.parametrize("template", BAD_TEMPLATES)
def test_saving_a_template_outside_the_safe_subset_is_refused(db, template):
    event_type = EventType(category=Category.objects.get(slug="system"), name="job_started",
                           label="Job started", title_template=template,
                           default_priority="high")

    with pytest.raises(ValidationError) as refused:
        event_type.full_clean()

    assert "title_template" in refused.value.message_dict
    assert "Not a valid template" in " ".join(refused.value.message_dict["title_template"])


@pytest.mark.parametrize("template", BAD_TEMPLATES[:3])
def test_registering_a_bad_template_in_code_is_refused(template):
    before = list(EVENT_TYPES)

    with pytest.raises(ValueError, match="title_template"):
        register_event_type(category="system", name="job_started", label="Job started",
                            priority="high", title_template=template)

    assert before == EVENT_TYPES


@pytest.mark.parametrize("template", [
    definition.title_template for definition in EVENT_TYPES
] + [
    "{{ name|default:'x'|upper }} {{ n|floatformat:2 }} {{ tags|join:', ' }}",
    "{{ s|truncatechars:10 }} {{ s|truncatewords:3 }} {{ s|cut:' ' }} {{ s|capfirst }}",
    "{{ count }} item{{ count|pluralize }} {{ flag|yesno:'on,off' }} {{ n|stringformat:'05d' }}",
    "{{ user.name|title }} {{ items|length }} {{ items|first }} {{ items|slice:':2' }}",
])
def test_the_catalog_and_the_allowed_filters_pass(template):
    validate_title_template(template)


def test_rendering_uses_allowed_filters():
    title = render_title(
        "{{ name|default:'query'|upper }}: {{ n|floatformat:2 }}, {{ tags|join:'/' }}",
        {"n": 2, "tags": ["a", "b"]}, fallback="label",
    )

    assert title == "QUERY: 2.00, a/b"


@pytest.mark.parametrize("template", BAD_TEMPLATES)
def test_a_stored_bad_template_falls_back_to_the_label_logged_once_with_the_event(
    db, make_workspace, caplog, template
):
    workspace = make_workspace(members=2)
    custom_type(template)

    with caplog.at_level(logging.WARNING, logger="events.templating"):
        event = emit_and_route("system.job_started", workspace, **PAYLOAD)

    event.refresh_from_db()
    assert event.status == "routed"
    titles = Notification.objects.filter(event=event).values_list("title", flat=True)
    assert list(titles) == ["Job started", "Job started"]
    warnings = [r for r in caplog.records if str(event.pk) in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


def test_a_bad_template_does_not_stop_a_digest_flush(db, make_workspace, make_user):
    """The issue's case: a medium type with |timesince stopped the whole 5m bucket."""
    workspace = make_workspace(members=2)
    custom_type("Job started {{ started_at|timesince }} ago", priority="medium")
    emit_and_route("system.job_started", workspace, started_at="2026-11-27T10:00:00Z")
    emit_and_route("query.long_running_query", workspace, query_name="nightly")

    result = digest_flush(bucket="5m")  # what the queued flush task runs

    assert result.digests_sent == 2
    for person in workspace.people:
        digest = Notification.objects.get(user=person, kind="digest")
        assert [item["title"] for item in digest.items] == [
            "Job started", "Long-running query: nightly"]


def test_titles_are_stored_as_plain_text_and_escaped_once_in_the_admin(
    db, make_workspace, make_user, client
):
    workspace = make_workspace(members=1)
    member = workspace.people[0]
    emit_and_route("data_source.connection_lost", workspace,
                   datasource_name="O'Brien & Co <prod>")

    body = api_client_for(member).get("/api/notifications/").json()
    assert body["results"][0]["title"] == "Connection lost: O'Brien & Co <prod>"
    assert Notification.objects.get().title == "Connection lost: O'Brien & Co <prod>"

    client.force_login(make_user(superuser=True))
    page = client.get("/admin/notifications/notification/").content.decode()
    assert "Connection lost: O&#x27;Brien &amp; Co &lt;prod&gt;" in page
    assert "&amp;amp;" not in page and "&amp;#x27;" not in page


def test_a_lookup_cannot_change_the_payload_it_renders():
    payload = {"items": [1, 2], "meta": {"a": 1}}

    render_title("{{ items.pop }} {{ items.clear }} {{ meta.clear }}", payload, fallback="x")

    assert payload == {"items": [1, 2], "meta": {"a": 1}}


def test_titles_are_rendered_as_plain_text_never_html_escaped():
    title = render_title("Query failed: {{ query_name|default:'query' }} by {{ owner }}",
                         {"query_name": "O'Brien & Co <prod>", "owner": '"ops"'},
                         fallback="Query failed")

    assert title == "Query failed: O'Brien & Co <prod> by \"ops\""
