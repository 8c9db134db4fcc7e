"""``manage.py emit``: what an operator types, what they read back, what is written."""

import json
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from events.models import Event, EventType, Membership, Workspace
from tests.support import ROOT, subprocess_env

EMITTED = re.compile(
    r"Emitted (?P<key>[\w.]+) as event (?P<pk>[0-9a-f-]{36}) \((?P<priority>\w+), (?P<status>\w+)\)"
)


@pytest.fixture
def workspace(db):
    workspace = Workspace.objects.create(name="Analytics")
    member = get_user_model().objects.create(username="member", password="!")
    Membership.objects.create(workspace=workspace, user=member)
    return workspace


def run_emit(*args) -> dict:
    out = StringIO()
    call_command("emit", *args, stdout=out)
    match = EMITTED.search(out.getvalue())
    assert match, out.getvalue()
    return match.groupdict()


# --- success ------------------------------------------------------------------------------

def test_emit_command_reports_the_stored_event(workspace):
    printed = run_emit("data_source.connection_lost", "--workspace", workspace.public_id,
                       "--payload", '{"datasource_name": "Warehouse"}')

    event = Event.objects.get()
    assert printed == {"key": "data_source.connection_lost", "pk": str(event.pk),
                       "priority": "critical", "status": "pending"}
    assert event.workspace == workspace
    assert event.payload == {"datasource_name": "Warehouse"}


def test_emit_command_without_workspace_or_payload(db):
    printed = run_emit("system.platform_update_available")

    event = Event.objects.get()
    assert printed["pk"] == str(event.pk)
    assert (event.workspace, event.payload, event.priority) == (None, {}, "low")


def test_emit_command_uses_the_priority_override(workspace):
    EventType.objects.filter(key="query.long_running_query").update(priority_override="critical")

    printed = run_emit("query.long_running_query", "--workspace", workspace.public_id)

    assert printed["priority"] == "critical"
    assert Event.objects.get().priority == "critical"


def test_emit_command_on_a_disabled_event_type_says_it_is_suppressed(workspace):
    EventType.objects.filter(key="user.user_invited").update(enabled=False)

    printed = run_emit("user.user_invited", "--workspace", workspace.public_id)

    assert (printed["priority"], printed["status"]) == ("info", "suppressed")
    assert Event.objects.get().status == Event.Status.SUPPRESSED


def test_emit_command_dedupe_key_returns_the_first_event(workspace):
    args = ["query.query_failed", "--workspace", workspace.public_id, "--dedupe-key", "q-7"]

    first = run_emit(*args, "--payload", '{"query_name": "first"}')
    second = run_emit(*args, "--payload", '{"query_name": "second"}')

    assert first["pk"] == second["pk"]
    assert Event.objects.get().payload == {"query_name": "first"}
    out = StringIO()
    call_command("emit", *args, stdout=out)
    assert "dedupe key 'q-7' was emitted before" in out.getvalue()


# --- errors: a CommandError naming the problem, and nothing written -----------------------

def oversized_payload() -> str:
    return json.dumps({"blob": "x" * (64 * 1024)})


@pytest.mark.parametrize(("args", "message"), [
    (["data_source.nope"], "unknown event type 'data_source.nope'"),
    (["query.query_failed", "--payload", "{bad"], "--payload is not valid JSON"),
    (["query.query_failed", "--payload", "[1, 2]"],
     "payload must be a JSON object, got list"),
    (["query.query_failed", "--payload", "NaN"], "payload must be a JSON object"),
    (["query.query_failed", "--payload", oversized_payload()],
     "payload is 65547 bytes as JSON; the limit is 65536 bytes"),
    (["query.query_failed", "--workspace", "ws_nope"],
     "unknown workspace 'ws_nope'"),
    (["query.query_failed", "--workspace", "ws_nope", "--payload", "{bad"],
     "--payload is not valid JSON"),
    (["query.query_failed", "--dedupe-key", " "], "dedupe_key must be a non-empty"),
], ids=["unknown-type", "bad-json", "json-list", "json-nan", "oversized", "unknown-workspace",
        "bad-json-first", "blank-dedupe-key"])
def test_emit_command_errors(workspace, args, message):
    out = StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("emit", *args, stdout=out)

    assert message in str(caught.value)
    assert not Event.objects.exists()
    assert "Emitted" not in out.getvalue()


def test_emit_command_requires_an_event_type(db):
    with pytest.raises(CommandError, match="event_type"):
        call_command("emit")
    assert not Event.objects.exists()


# --- the real command line ----------------------------------------------------------------

def manage(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=subprocess_env(),
        capture_output=True, text=True, timeout=120,
    )


def test_manage_py_emit_from_a_shell(live_db):
    workspace = Workspace.objects.create(name="Shell")

    done = manage("emit", "query.query_timeout", "--workspace", workspace.public_id,
                  "--payload", '{"query_name": "nightly"}')
    failed = manage("emit", "query.query_timeout", "--workspace", "ws_missing")

    assert done.returncode == 0, done.stderr
    printed = EMITTED.search(done.stdout)
    assert printed, done.stdout
    event = Event.objects.get()
    assert printed["pk"] == str(event.pk)
    assert (event.workspace, event.payload, event.priority) == (
        workspace, {"query_name": "nightly"}, "high"
    )
    assert failed.returncode == 1
    assert "unknown workspace 'ws_missing'" in failed.stderr
    assert Event.objects.count() == 1
