"""The channel interface: backends found by name, each saying who receives (pure),
rendering a message and sending it; every registered backend keeps the same contract."""

import email
import email.policy
import uuid
from email.message import EmailMessage
from types import SimpleNamespace

import pytest

from channels_app.backends import (
    ChannelListError,
    Recipient,
    channel_names,
    check_channel_list,
    get_backend,
    registered_backends,
)
from channels_app.backends.webhook import EndpointTarget
from channels_app.errors import TransientError
from channels_app.models import EmailSettings, WebhookEndpoint
from channels_app.transports.smtp import Envelope
from channels_app.webhooks.sending import WebhookMessage
from events import emit
from events.models import Event
from events.templating import render_title


def person(pk, email=""):
    return SimpleNamespace(pk=pk, email=email)


def rule(*extra_emails):
    return SimpleNamespace(extra_emails=list(extra_emails))


def test_builtin_backends_are_found_by_channel_name():
    assert get_backend("in_app").sends_digests is True
    assert get_backend("email").sends_digests is True
    assert get_backend("webhook").sends_digests is True
    assert get_backend("sms") is None
    assert channel_names()[:3] == ["in_app", "email", "webhook"]
    assert [b.name for b in registered_backends() if b.user_choosable][:2] == ["in_app", "email"]


def test_a_channel_list_is_checked_against_the_registry_once_for_everyone():
    assert check_channel_list(["email", "in_app"]) == ["email", "in_app"]
    for value, message, index in (
            ([], "Choose at least one channel.", None),
            ("email", "Give a list of channels, e.g. [in_app, email].", None),
            (["email", "sms"], "Unknown channel 'sms'; choose from in_app, email, webhook.", 1),
            (["email", "email"], "A channel is listed twice.", 1)):
        with pytest.raises(ChannelListError) as refused:
            check_channel_list(value)
        assert (refused.value.message, refused.value.index, refused.value.field) == (
            message, index, "channels")


def test_in_app_reaches_each_user_once_and_ignores_addresses():
    recipients = get_backend("in_app").targets(
        event=None, members=[person(3), person(1), person(3)], rule=rule("ops@example.com"),
        config=None)

    assert recipients == [Recipient(target="3", user_id=3), Recipient(target="1", user_id=1)]


def test_email_reaches_each_address_once_whatever_its_case():
    members = [person(1, "Ops@Example.com"), person(2, ""), person(3, "dba@example.com")]

    recipients = get_backend("email").targets(
        event=None, members=members, rule=rule("ops@example.com", "Lists@Example.com"),
        config=None)

    assert recipients == [
        Recipient(target="ops@example.com", user_id=1),  # the member keeps the address
        Recipient(target="dba@example.com", user_id=3),
        Recipient(target="lists@example.com", user_id=None),
    ]


# --- the contract every registered backend keeps ---------------------------------------------

def text_of(message) -> str:
    """What a receiver reads of a rendered message, whatever the channel."""
    if isinstance(message, Envelope):  # an email as its bytes
        message = email.message_from_bytes(message.data, policy=email.policy.default)
    if isinstance(message, EmailMessage):
        return message["Subject"] + "\n" + message.get_body(("plain",)).get_content()
    if isinstance(message, WebhookMessage):
        return message.body.decode()
    return repr(message)


@pytest.fixture
def unreachable_email(closed_port):
    EmailSettings.objects.update_or_create(pk=1, defaults={
        "host": "127.0.0.1", "port": closed_port.port, "encryption": "none",
        "from_email": "alerts@datafi.test", "timeout": 5, "enabled": True})


@pytest.fixture
def unreachable_endpoints(closed_port, settings):
    """Two webhook endpoints whose port nobody listens on."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    # Slack: its messages carry the title (the seed's body has none, only the payload).
    return [WebhookEndpoint.objects.create(name=f"hook {n}", format="slack",
                                           url=f"http://127.0.0.1:{closed_port.port}/{n}")
            for n in range(2)]


@pytest.mark.parametrize("backend", [b for b in registered_backends() if b.external],
                         ids=lambda b: b.name)
def test_every_external_backend_keeps_the_channel_contract(
        backend, db, make_workspace, unreachable_email, unreachable_endpoints,
        django_assert_num_queries):
    workspace = make_workspace("Ops")
    events = [Event.objects.select_related("event_type__category", "workspace").get(
        pk=emit("query.long_running_query", workspace=workspace,
                payload={"query_name": f"q{n}"}).pk) for n in range(2)]
    members = [person(1, "a@example.com"), person(2, "b@example.com"),
               person(1, "a@example.com")]
    config = backend.load_config()
    if config is not None:  # the endpoints: each listed twice, each matched once
        config = [*config, *config]
    context = {"event": events[0], "members": members, "rule": None, "config": config}
    with django_assert_num_queries(0):  # who receives is pure
        recipients = backend.targets(**context)
    assert len(recipients) == len(set(recipients)) == 2
    assert backend.targets(**context) == recipients  # stable
    assert all(isinstance(r.target, str) and r.target for r in recipients)

    titles = [render_title(e.event_type.title_template, e.payload, fallback="") for e in events]
    delivery_id = uuid.uuid4()
    one = backend.render_event(event=events[0], title=titles[0], recipient=recipients[0],
                               delivery_id=delivery_id)
    digest = backend.render_digest(priority="medium", events=list(zip(events, titles, strict=True)),
                                   recipient=recipients[0], delivery_id=delivery_id)
    assert titles[0] in text_of(one)
    assert all(title in text_of(digest) for title in titles)

    assert backend.configuration_problems() == []
    with pytest.raises(TransientError):  # nothing listens: worth retrying later
        backend.send(one)


def test_the_bell_writes_its_own_rows():
    in_app = get_backend("in_app")

    assert in_app.external is False
    assert type(in_app).write_now is not type(get_backend("email")).write_now
    assert type(in_app).write_digests is not type(get_backend("email")).write_digests


def test_webhook_keeps_the_endpoints_whose_filters_match_the_event(db, make_workspace):
    workspace = make_workspace("Ops")
    event = Event.objects.select_related("event_type__category").get(
        pk=emit("query.query_failed", workspace=workspace).pk)
    endpoints = [
        EndpointTarget(id=1),
        EndpointTarget(id=2, categories=("queries",), workspace_id=workspace.pk),
        EndpointTarget(id=3, categories=("policies",)),
        EndpointTarget(id=4, event_types=("query.query_timeout",)),
        EndpointTarget(id=5, workspace_id=workspace.pk + 1),
        EndpointTarget(id=6, event_types=("query.query_failed",)),
    ]

    recipients = get_backend("webhook").targets(event=event, members=[person(1)], rule=None,
                                                config=endpoints)

    assert recipients == [Recipient(target="1"), Recipient(target="2"), Recipient(target="6")]
