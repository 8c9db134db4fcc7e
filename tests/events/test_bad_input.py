"""Bad input from outside: a 400 (or a CommandError) naming the problem, never a 500."""

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from events import emit
from events.exceptions import InvalidPayload, InvalidRecipients
from events.models import Event
from notifications.models import Notification
from tests.support import ROOT, api_client_for, subprocess_env

EVENTS_URL = "/api/events/"


def nested(depth: int) -> dict:
    """A payload ``depth`` objects deep, built without recursion."""
    payload = {"leaf": 1}
    for _ in range(depth - 1):
        payload = {"a": payload}
    return payload


def raw_body(payload_json: str) -> str:
    return '{"event_type": "query.query_failed", "payload": ' + payload_json + "}"


def deep_json(depth: int) -> str:
    return '{"a": ' * (depth - 1) + '{"leaf": 1}' + "}" * (depth - 1)


@pytest.fixture
def admin_api(make_user):
    return api_client_for(make_user("root", superuser=True))


# --- payloads (PostgreSQL refused NUL and lone surrogates with a 500) ---------------------

BAD_PAYLOADS = {
    "nul-in-value": ('{"name": "a\\u0000b"}', "NUL"),
    "nul-in-key": ('{"na\\u0000me": "x"}', "NUL"),
    "nul-deep-inside": ('{"a": [{"b": ["ok", "x\\u0000"]}]}', "NUL"),
    "lone-surrogate-value": ('{"name": "\\ud800"}', "surrogate"),
    "lone-surrogate-key": ('{"\\udfff": 1}', "surrogate"),
    "deeper-than-the-limit": (deep_json(33), "32 levels"),
    "far-too-deep-for-python": (deep_json(5000), "32 levels"),
    "huge-integer": ('{"n": ' + "9" * 5000 + "}", "digits"),
}


@pytest.mark.parametrize(("payload_json", "problem"), BAD_PAYLOADS.values(),
                         ids=BAD_PAYLOADS.keys())
def test_api_refuses_a_bad_payload_naming_it(postgres, admin_api, payload_json, problem):
    response = admin_api.generic("POST", EVENTS_URL, raw_body(payload_json),
                                 content_type="application/json")

    assert response.status_code == 400, response.content[:300]
    errors = response.json()
    assert list(errors) == ["payload"], errors
    assert problem.lower() in " ".join(errors["payload"]).lower()
    assert len(response.content) < 500  # names the problem; does not echo the payload
    assert not Event.objects.exists()


def test_api_accepts_a_payload_at_the_depth_limit(postgres, admin_api):
    response = admin_api.generic("POST", EVENTS_URL, raw_body(deep_json(32)),
                                 content_type="application/json")

    assert response.status_code == 201, response.content[:300]
    event = Event.objects.get()
    assert event.payload == json.loads(deep_json(32))


@pytest.mark.parametrize(("payload", "problem"), [
    ({"name": "a\x00b"}, "NUL"),
    ({"na\x00me": 1}, "NUL"),
    ({"name": "\ud800"}, "surrogate"),
    (nested(33), "32 levels"),
    (nested(3000), "32 levels"),
    ({"n": 10**5000}, "digits"),
], ids=["nul", "nul-key", "surrogate", "too-deep", "far-too-deep", "huge-integer"])
def test_emit_refuses_a_bad_payload(db, payload, problem):
    with pytest.raises(InvalidPayload, match=problem):
        emit("query.query_failed", payload=payload)

    assert not Event.objects.exists()


def test_the_depth_limit_is_a_setting(db, settings):
    settings.DATAFI_MAX_PAYLOAD_DEPTH = 3

    emit("query.query_failed", payload=nested(3))
    with pytest.raises(InvalidPayload, match="3 levels"):
        emit("query.query_failed", payload=nested(4))


@pytest.mark.parametrize(("field", "value"), [
    ("event_type", "query.query\x00failed"), ("workspace", "ws_\x00"),
    ("dedupe_key", "k\x00"), ("event_type", "query.\udc80"),
])
def test_emit_refuses_nul_and_surrogates_in_its_other_strings(postgres, db, field, value):
    arguments = {"event_type": "query.query_failed", field: value}

    with pytest.raises(ValueError, match="must be|NUL|surrogate"):
        emit(arguments.pop("event_type"), **arguments)


@pytest.mark.parametrize(("payload", "problem"), [
    ('{"name": "a\\u0000b"}', "NUL"),
    ('{"name": "\\ud800"}', "surrogate"),
    (deep_json(40), "32 levels"),
    (deep_json(100_000), "nested too deeply"),
    ('{"n": ' + "1" * 5000 + "}", "not valid JSON"),
], ids=["nul", "surrogate", "too-deep", "far-too-deep", "huge-integer"])
def test_emit_command_refuses_a_bad_payload_with_a_command_error(postgres, db, payload, problem):
    with pytest.raises(CommandError, match=problem):
        call_command("emit", "query.query_failed", "--payload", payload, stdout=StringIO())

    assert not Event.objects.exists()


def test_emit_command_with_non_utf8_arguments_is_a_clear_error(live_db, postgres):
    result = subprocess.run(
        [sys.executable, "manage.py", "emit", b"query.\xff\xfe", "--payload", b'{"a": "\xff"}'],
        cwd=ROOT, env=subprocess_env(), capture_output=True, timeout=120,
    )

    assert result.returncode == 1
    stderr = result.stderr.decode(errors="replace")
    assert "CommandError: event_type is not valid UTF-8 text" in stderr
    assert "Traceback" not in stderr


# --- a NUL in a URL -----------------------------------------------------------------------

@pytest.mark.parametrize(("method", "url"), [
    ("get", "/api/event-types/%00/"),
    ("patch", "/api/event-types/%00/"),
    ("get", "/api/event-types/?category=%00"),
    ("get", "/api/event-types/?x%00=1"),
    ("get", "/api/digest-settings/%00/"),
    ("patch", "/api/digest-settings/%00/"),
    ("get", "/api/notifications/?category=%00"),
    ("get", "/api/deliveries/?event_type=%00"),
    ("get", "/admin/events/eventtype/?q=%00"),
])
def test_a_nul_in_a_url_is_a_400(postgres, client, make_user, method, url):
    superuser = make_user("root", superuser=True)
    client.force_login(superuser)
    api = api_client_for(superuser)

    caller = client if url.startswith("/admin/") else api
    response = getattr(caller, method)(url, {"enabled": False} if method == "patch" else None,
                                       **({"format": "json"} if method == "patch" else {}))

    assert response.status_code in (400, 404)
    assert "NUL" in response.content.decode()


# --- emit permission is scoped to the caller's workspaces ---------------------------------

@pytest.fixture
def scoped(make_user, make_workspace):
    """A user holding only 'events.emit_event', member of ws_a; ws_b has others."""
    person = make_user("emitter")
    person.user_permissions.add(Permission.objects.get(codename="emit_event",
                                                       content_type__app_label="events"))
    ws_a = make_workspace("A", users=[person], members=1)
    ws_b = make_workspace("B", members=1)
    return {"user": person, "api": api_client_for(person), "ws_a": ws_a, "ws_b": ws_b}


def post(api, **body):
    return api.post(EVENTS_URL, {"event_type": "data_source.connection_lost", **body},
                    format="json")


def test_a_member_emits_to_their_own_workspace(scoped):
    colleague = scoped["ws_a"].people[1]

    response = post(scoped["api"], workspace_id=scoped["ws_a"].public_id,
                    recipients=[colleague.pk])

    assert response.status_code == 201, response.json()


def test_another_workspace_is_refused_exactly_like_an_unknown_one(scoped):
    theirs = post(scoped["api"], workspace_id=scoped["ws_b"].public_id)
    unknown = post(scoped["api"], workspace_id="ws_000000000000")

    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json()["workspace_id"] == [
        f"unknown workspace {scoped['ws_b'].public_id!r}"]
    assert unknown.json()["workspace_id"] == ["unknown workspace 'ws_000000000000'"]
    assert not Event.objects.exists()


def test_recipients_outside_the_workspace_are_refused(scoped, make_user):
    superuser = make_user("root", superuser=True)
    stranger = scoped["ws_b"].people[0]

    for outsider in (superuser, stranger):
        response = post(scoped["api"], workspace_id=scoped["ws_a"].public_id,
                        recipients=[outsider.pk])
        assert response.status_code == 400
        assert list(response.json()) == ["recipients"]
    assert not Event.objects.exists()
    assert not Notification.objects.exists()


def test_the_staff_audience_needs_staff_or_the_global_permission(scoped, make_user):
    superuser = make_user("root", superuser=True)

    for body in ({}, {"recipients": [superuser.pk]}):
        response = post(scoped["api"], **body)
        assert response.status_code == 400
        assert "emit_any_workspace" in response.json()["workspace_id"][0]
    assert not Event.objects.exists()


def test_the_global_permission_or_staff_emits_anywhere(scoped, make_user):
    service = scoped["user"]
    service.user_permissions.add(Permission.objects.get(codename="emit_any_workspace",
                                                        content_type__app_label="events"))
    service = type(service).objects.get(pk=service.pk)  # fresh permission cache
    staff = make_user("ops", staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="emit_event",
                                                      content_type__app_label="events"))

    for person in (service, staff):
        api = api_client_for(person)
        assert post(api, workspace_id=scoped["ws_b"].public_id).status_code == 201
        assert post(api).status_code == 201


def test_emit_in_process_is_not_restricted(scoped):
    event = emit("data_source.connection_lost", workspace=scoped["ws_b"].public_id)

    assert event.workspace == scoped["ws_b"]


# --- recipients: at most 1,000, and no error echoes the list ------------------------------

@pytest.mark.parametrize("recipients", [
    list(range(1, 100_001)), ["x"] * 1001, [10**30] * 1001,
], ids=["100000-ids", "1001-strings", "1001-huge-ints"])
def test_more_than_1000_recipients_are_refused_without_echoing_them(db, admin_api,
                                                                   recipients):
    response = post(admin_api, recipients=recipients)

    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == ["recipients"]
    assert "at most 1000" in errors["recipients"][0]
    assert len(response.content) < 300
    assert not Event.objects.exists()


def test_bad_items_in_recipients_are_named_a_few_at_a_time(db, admin_api):
    response = post(admin_api, recipients=["x"] * 1000)

    assert response.status_code == 400
    assert list(response.json()) == ["recipients"]
    assert len(response.json()["recipients"]) == 5  # the first few items' errors
    assert len(response.content) < 500


def test_unknown_recipients_are_quoted_a_few_then_counted(db, admin_api,
                                                          make_workspace):
    workspace = make_workspace(members=1)
    strangers = [*range(10**9, 10**9 + 998), 10**30]  # with the member: 1,000 in all

    response = post(admin_api, workspace_id=workspace.public_id,
                    recipients=[workspace.people[0].pk, *strangers])

    assert response.status_code == 400
    [message] = response.json()["recipients"]
    assert message == (f"recipients {strangers[:5]} and 994 more (999 in all) are not "
                       f"members of workspace {workspace.public_id}")
    assert not Event.objects.exists()


def test_emit_in_process_has_the_same_cap(db):
    with pytest.raises(InvalidRecipients, match="at most 1000"):
        emit("query.query_failed", recipients=iter(range(1, 10**9)))

    assert not Event.objects.exists()


# --- unknown fields and permission messages -----------------------------------------------

def test_403_on_a_read_names_the_view_permission(make_user):
    api = api_client_for(make_user("helper", staff=True))

    response = api.get("/api/digest-settings/")

    assert response.status_code == 403
    assert "channels_app.view_digestsetting" in response.json()["detail"]
    assert "change_digestsetting" not in response.json()["detail"]


def test_403_on_a_write_names_the_change_permission(make_user):
    api = api_client_for(make_user("helper", staff=True))

    response = api.patch("/api/digest-settings/in_app/", {"digest_enabled": False},
                         format="json")

    assert response.status_code == 403
    assert "channels_app.change_digestsetting" in response.json()["detail"]
