"""The channel interface: backends found by name, planning per recipient, a plug-in seam."""

import pytest

from channels_app.backends import ChannelBackend, get_backend, register, registered_backends
from channels_app.backends import base as registry
from events import emit
from notifications.models import Delivery, RoutingRule
from notifications.services import event_route


def test_builtin_backends_are_found_by_channel_name():
    assert get_backend("in_app").sends_digests is True
    assert get_backend("email").sends_digests is False
    assert get_backend("sms") is None
    assert {backend.name for backend in registered_backends()} >= {"in_app", "email"}


def test_email_plans_one_delivery_per_distinct_address(db, make_user, make_workspace):
    shouting = make_user("shouting", email="Ops@Example.com")
    silent = make_user("silent")
    silent.email = ""  # no address: no email delivery
    silent.save()
    workspace = make_workspace(users=[shouting, silent], members=1)
    RoutingRule.objects.create(category=None, event_type_id=_type_id("query.query_failed"),
                               channels=["email"],
                               extra_emails=["ops@example.com", "dba@example.com"])

    event = emit("query.query_failed", workspace=workspace, payload={"query_name": "q"})
    event_route(event_id=event.pk)

    planned = sorted(Delivery.objects.filter(event=event).values_list("address", "user_id"))
    member = workspace.people[2]
    assert planned == sorted([("dba@example.com", None), ("ops@example.com", shouting.pk),
                              (member.email, member.pk)])
    assert set(Delivery.objects.values_list("status", "bucket")) == {("pending", "")}


@pytest.fixture
def recording_webhook_backend():
    """A backend plugged in for the webhook channel, which has none built in yet."""

    class RecordingWebhook(ChannelBackend):
        name = "webhook"
        calls = []

        def route(self, *, event, users, rule, bucket):
            self.calls.append((event.event_type.key, [u.pk for u in users], bucket))
            return len(users)

    register(RecordingWebhook)
    yield registry._registry["webhook"]
    del registry._registry["webhook"]


def test_a_registered_backend_receives_the_events_routed_to_its_channel(
    db, make_workspace, recording_webhook_backend
):
    workspace = make_workspace(members=2)

    critical = emit("policy.violation_detected", workspace=workspace)
    result = event_route(event_id=critical.pk)
    medium = emit("query.long_running_query", workspace=workspace)
    event_route(event_id=medium.pk)  # medium defaults to in_app only

    assert result.channels == {"in_app": 2, "email": 2, "webhook": 2}
    assert recording_webhook_backend.calls == [
        ("policy.violation_detected", [u.pk for u in workspace.people], "")]


def _type_id(key):
    from events.models import EventType

    return EventType.objects.get(key=key).pk
