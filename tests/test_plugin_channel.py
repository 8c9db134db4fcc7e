"""A channel added by an app that exists only under tests/ (``tests/plugin_channel``), with no
file of the project changed: its events are routed, sent with retries by a real worker,
logged with attempts, digested, and shown in the preferences.

The app is installed the way an operator installs one, ``DATAFI_EXTRA_APPS``, in the worker
process; this process installs it in its settings (what that variable does at start).
"""

import subprocess
import sys

import pytest

from channels_app.backends import get_backend, unregister
from events.models import EventType
from notifications.models import Delivery, RoutingRule
from notifications.services.digests import digest_flush
from tests.channels_app.webhook_servers import Receiver, Reply
from tests.support import (
    ROOT,
    api_client_for,
    emit_and_route,
    stop_tree,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.worker

PLUGIN = "tests.plugin_channel"


@pytest.fixture
def chat_receiver():
    receiver = Receiver(replies=[Reply(503)])  # the first message fails once: a retry
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def plugin_installed(settings, monkeypatch, chat_receiver):
    monkeypatch.setenv("CHAT_CHANNEL_URL", chat_receiver.url("/chat"))
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, PLUGIN]  # runs its ready()
    try:
        assert get_backend("chat") is not None
        yield
    finally:
        unregister("chat")  # ready() registered it; the other tests never see it


@pytest.fixture
def plugin_worker(live_db, chat_receiver, tmp_path):
    """A worker of the chat channel's queue, with the plug-in installed by configuration."""
    env = subprocess_env(DATAFI_EXTRA_APPS=PLUGIN, CHAT_CHANNEL_URL=chat_receiver.url("/chat"),
                         DATAFI_RETRY_BASE_SECONDS="0.2")
    log_path = tmp_path / "plugin-worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--queues", "chat_sends", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", "plugin@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "ready." in log_path.read_text() or process.poll() is not None,
                   timeout=180, message="the plug-in's worker to start")
        if process.poll() is not None:
            pytest.fail(f"the plug-in's worker exited:\n{log_path.read_text()[-3000:]}")
        yield process
    finally:
        stop_tree(process, grace=30)


def test_a_channel_from_an_app_of_its_own_works_end_to_end(
        plugin_installed, plugin_worker, chat_receiver, make_workspace, make_user, monkeypatch):
    # Routed here, where the plug-in is installed: emit publishes nothing (as while the broker
    # is known to be down), so the session's worker, if one runs, without the plug-in, never
    # routes these events first.
    monkeypatch.setattr("events.services.outbox._broker_down_until", float("inf"))
    workspace = make_workspace("Ops", members=2)
    alice, bob = workspace.people
    RoutingRule.objects.create(event_type=EventType.objects.get(key="query.query_failed"),
                               channels=["in_app", "chat"])
    RoutingRule.objects.create(event_type=EventType.objects.get(key="query.long_running_query"),
                               channels=["chat"])

    # Routed and sent, one message per member, by user name; the first one retried.
    event = emit_and_route("query.query_failed", workspace, query_name="nightly")
    wait_until(lambda: Delivery.objects.filter(event=event, channel="chat",
                                               status="delivered").count() == 2,
               timeout=120, message="both chat messages to be delivered")
    texts = [(r.json()["to"], r.json()["text"]) for r in chat_receiver.received]
    assert sorted(set(texts)) == sorted((u.username, "Query failed: nightly") for u in (alice, bob))
    assert len(texts) == 3  # one of them twice: 503, then 200

    # Logged with its attempts, over the API, with the channel's own target.
    staff = make_user("ops-admin", superuser=True)
    api = api_client_for(staff)
    listed = api.get("/api/deliveries/", {"channel": "chat"}).json()["results"]
    assert sorted(d["target"] for d in listed) == sorted([alice.username, bob.username])
    retried = next(d for d in listed if d["attempts"] == 2)
    attempts = api.get(f"/api/deliveries/{retried['id']}/attempts/").json()
    assert [(a["number"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "transient", 503), (2, "delivered", 200)]

    # Digested: medium events wait in their bucket; a flush sends one message per member.
    for n in range(2):
        emit_and_route("query.long_running_query", workspace, query_name=f"q{n}")
    assert Delivery.objects.filter(channel="chat", bucket="5m", status="pending").count() == 4
    digest_flush(bucket="5m")
    wait_until(lambda: Delivery.objects.filter(channel="chat", kind="digest",
                                               status="delivered").count() == 2,
               timeout=120, message="the chat digests to be delivered")
    digests = [r.json() for r in chat_receiver.received if "items" in r.json()]
    assert sorted(d["to"] for d in digests) == sorted([alice.username, bob.username])
    assert all(d["text"] == "2 medium notifications" and len(d["items"]) == 2 for d in digests)

    # Shown in the preferences; a member who switches it off gets nothing more on it.
    member = api_client_for(alice)
    shown = member.get("/api/preferences/").json()
    assert {"name": "chat", "label": "Team chat"} in shown["channels"]
    assert shown["categories"]["queries"]["chat"] is True
    answer = member.put("/api/preferences/", {"categories": {"queries": {"chat": False}}},
                        format="json")
    assert answer.status_code == 200 and answer.json()["categories"]["queries"]["chat"] is False
    later = emit_and_route("query.query_failed", workspace, query_name="again")
    rows = {d.user_id: d for d in Delivery.objects.filter(event=later, channel="chat")}
    assert (rows[alice.pk].status, rows[alice.pk].decision) == ("skipped", "preference_off")
    wait_until(lambda: Delivery.objects.get(pk=rows[bob.pk].pk).status == "delivered",
               timeout=120, message="bob's chat message to be delivered")
