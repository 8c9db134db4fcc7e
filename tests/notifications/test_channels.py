"""Routing records what each channel backend says: rows per recipient, a plug-in seam."""

import pytest

from channels_app.backends import ChannelBackend, Recipient, get_backend, register, unregister
from events import emit
from events.models import EventType
from notifications.models import Delivery, RoutingRule
from notifications.routing.route import event_route


def test_email_plans_one_delivery_per_distinct_address(db, make_user, make_workspace):
    shouting = make_user("shouting", email="Ops@Example.com")
    silent = make_user("silent")
    silent.email = ""  # no address: no email delivery
    silent.save()
    workspace = make_workspace(users=[shouting, silent], members=1)
    RoutingRule.objects.create(event_type=EventType.objects.get(key="query.query_failed"),
                               channels=["email"],
                               extra_emails=["ops@example.com", "dba@example.com"])

    event = emit("query.query_failed", workspace=workspace, payload={"query_name": "q"})
    event_route(event_id=event.pk)

    planned = sorted(Delivery.objects.filter(event=event).values_list("target", "user_id"))
    member = workspace.people[2]
    assert planned == sorted([("dba@example.com", None), ("ops@example.com", shouting.pk),
                              (member.email, member.pk)])
    assert set(Delivery.objects.values_list("status", "bucket")) == {("pending", "")}


@pytest.fixture
def recording_webhook_backend():
    """A backend plugged in for the webhook channel in place of the built-in one."""

    class RecordingWebhook(ChannelBackend):
        name = "webhook"
        label = "Recording webhook"
        calls = []

        def targets(self, *, event, members, rule, config):
            members = list(members)
            self.calls.append([m.pk for m in members])
            return [Recipient(target=str(100 + m.pk)) for m in members]

    builtin = type(get_backend("webhook"))
    register(RecordingWebhook)
    try:
        yield get_backend("webhook")
    finally:
        unregister("webhook")
        register(builtin)


def test_a_registered_backend_decides_who_receives_its_channel(db, make_workspace,
                                                              recording_webhook_backend):
    workspace = make_workspace(members=2)

    critical = emit("policy.violation_detected", workspace=workspace)
    result = event_route(event_id=critical.pk)
    medium = emit("query.long_running_query", workspace=workspace)
    event_route(event_id=medium.pk)  # medium defaults to in_app only

    assert result.channels == {"in_app": 2, "email": 2, "webhook": 2}
    assert recording_webhook_backend.calls == [[u.pk for u in workspace.people]]
    webhook = Delivery.objects.filter(event=critical, channel="webhook")
    assert sorted(webhook.values_list("target", "user_id", "bucket")) == sorted(
        (str(100 + u.pk), None, "") for u in workspace.people)
