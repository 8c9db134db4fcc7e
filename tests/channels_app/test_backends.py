"""The channel interface: backends found by name, each saying who receives (pure),
rendering a message and sending it; every registered backend keeps the same contract."""

import uuid
from email.message import EmailMessage
from types import SimpleNamespace

import pytest

from channels_app.backends import EndpointTarget, Recipient, get_backend, registered_backends
from channels_app.errors import TransientError
from channels_app.models import Channel, EmailSettings, WebhookEndpoint
from channels_app.webhooks.sending import WebhookMessage
from events import emit
from events.models import Event
from events.templating import render_title


def person(pk, email=""):
    return SimpleNamespace(pk=pk, email=email)


def test_builtin_backends_are_found_by_channel_name():
    assert get_backend("in_app").sends_digests is True
    assert get_backend("email").sends_digests is True
    assert get_backend("webhook").sends_digests is True
    assert get_backend("sms") is None
    assert {backend.name for backend in registered_backends()} >= {"in_app", "email", "webhook"}


def test_in_app_reaches_each_user_once_and_ignores_addresses():
    recipients = get_backend("in_app").recipients(
        users=[person(3), person(1), person(3)], extra_addresses=["ops@example.com"]
    )

    assert recipients == [Recipient(user_id=3), Recipient(user_id=1)]


def test_email_reaches_each_address_once_whatever_its_case():
    users = [person(1, "Ops@Example.com"), person(2, ""), person(3, "dba@example.com")]

    recipients = get_backend("email").recipients(
        users=users, extra_addresses=["ops@example.com", "Lists@Example.com"]
    )

    assert recipients == [
        Recipient(user_id=1, address="ops@example.com"),  # the member keeps the address
        Recipient(user_id=3, address="dba@example.com"),
        Recipient(user_id=None, address="lists@example.com"),
    ]


# --- the contract every registered backend keeps ---------------------------------------------

def text_of(message) -> str:
    """What a receiver reads of a rendered message, whatever the channel."""
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


@pytest.mark.parametrize("backend", registered_backends(), ids=lambda b: b.name)
def test_every_backend_keeps_the_channel_contract(backend, db, make_workspace, unreachable_email,
                                                  unreachable_endpoints,
                                                  django_assert_num_queries):
    assert backend.name in Channel.values
    workspace = make_workspace("Ops")
    events = [Event.objects.select_related("event_type__category", "workspace").get(
        pk=emit("query.long_running_query", workspace=workspace,
                payload={"query_name": f"q{n}"}).pk) for n in range(2)]
    users = [person(1, "a@example.com"), person(2, "b@example.com"), person(1, "a@example.com")]
    endpoints = [EndpointTarget(id=e.pk) for e in unreachable_endpoints]
    context = {"users": users, "endpoints": [*endpoints, endpoints[0]], "event": events[0]}
    with django_assert_num_queries(0):  # who receives is pure
        recipients = backend.recipients(**context)
    assert len(recipients) == len(set(recipients)) == 2
    assert backend.recipients(**context) == recipients  # stable

    titles = [render_title(e.event_type.title_template, e.payload, fallback="") for e in events]
    delivery_id = uuid.uuid4()
    one = backend.render_event(event=events[0], title=titles[0], recipient=recipients[0],
                               delivery_id=delivery_id)
    digest = backend.render_digest(priority="medium", events=list(zip(events, titles, strict=True)),
                                   recipient=recipients[0], delivery_id=delivery_id)
    assert titles[0] in text_of(one)
    assert all(title in text_of(digest) for title in titles)

    if backend.external:
        assert backend.is_enabled() is True
        with pytest.raises(TransientError):  # nothing listens: worth retrying later
            backend.send(one)
    else:  # in-app rows are written by notifications, in their own transaction
        with pytest.raises(NotImplementedError):
            backend.send(one)


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

    recipients = get_backend("webhook").recipients(users=[person(1)], endpoints=endpoints,
                                                   event=event)

    assert recipients == [Recipient(endpoint_id=1), Recipient(endpoint_id=2),
                          Recipient(endpoint_id=6)]
