"""Schemathesis hooks of ``tests/test_schemathesis.py``: what no schema can say.

A schema says shapes; some valid requests also name something that exists now (a
workspace, a member, a user, a cursor a list gave out), a time to come (a snooze, a mute,
a silence), the signed-in user's own password, a routing file's content, settings
complete enough to be enabled, a PagerDuty endpoint's routing key, quiet hours that end
at another time than they start. For each request schemathesis generates as valid (its
positive cases, in every phase), ``map_case`` puts such values where the operation takes
them, read from the running server with the role's token (a run may have deleted what
was seeded); a case generated as invalid is left as it is. Nothing is filtered out.

The test passes what it seeded in ``DATAFI_SCHEMATHESIS_CONTEXT`` (JSON): ``base``,
``token``, ``username``, ``password``, ``user_ids`` (username -> id), ``workspace``,
``webhook_urls`` and ``routing_files``.
"""

import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import requests
import schemathesis

CONTEXT = json.loads(os.environ.get("DATAFI_SCHEMATHESIS_CONTEXT", "{}"))
_session = requests.Session()
_session.headers["Authorization"] = f"Token {CONTEXT.get('token', '')}"
_turn = itertools.count()  # picks among values in turn: deterministic for a run


def _pick(values: list):
    return values[next(_turn) % len(values)]


def _get(path: str, **params) -> dict | list | None:
    response = _session.get(CONTEXT["base"] + path, params=params, timeout=30)
    return response.json() if response.ok else None


def _items(data) -> list:
    return data.get("results", []) if isinstance(data, dict) else list(data or [])


def _time(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def _member_workspace() -> tuple[str, list[int]]:
    """A workspace the signed-in user is a member of, with its members' user ids: one
    that exists now, made again (as staff) when the run removed them all."""
    for workspace in _items(_get("/api/workspaces/", page_size=50)):
        members = _items(_get(f"/api/workspaces/{workspace['workspace_id']}/members/"))
        if any(m["username"] == CONTEXT["username"] for m in members):
            return workspace["workspace_id"], [m["user_id"] for m in members]
    if _get("/api/workspaces/") is None:  # not staff: the seeded one is still there
        return CONTEXT["workspace"], sorted(CONTEXT["user_ids"].values())
    made = _session.post(CONTEXT["base"] + "/api/workspaces/", json={"name": "Hooks"},
                         timeout=30).json()["workspace_id"]
    _session.post(f"{CONTEXT['base']}/api/workspaces/{made}/members/",
                  json={"username": CONTEXT["username"]}, timeout=30)
    return made, [CONTEXT["user_ids"][CONTEXT["username"]]]


def _cursor(path: str) -> str | None:
    """A cursor the list ``path`` gives out (its second page), if it has one."""
    page = _get(path, page_size=1)
    link = page.get("next") if isinstance(page, dict) else None
    return parse_qs(urlparse(link).query).get("cursor", [None])[0] if link else None


def _body(case) -> dict | None:
    return dict(case.body) if isinstance(case.body, dict) else None


def _cursors(case):
    query = dict(case.query or {})
    if "cursor" in query:
        cursor = _cursor(case.path)
        if cursor is None:
            query.pop("cursor")
        else:
            query["cursor"] = cursor
        case.query = query


def _credentials(case, body):
    body.update(username=CONTEXT["username"], password=CONTEXT["password"])


def _emit(case, body):
    if isinstance(body.get("workspace_id"), str) or body.get("recipients"):
        workspace, members = _member_workspace()
        body["workspace_id"] = workspace
        if body.get("recipients"):
            body["recipients"] = members[:len(body["recipients"])]


def _explain(case, body):
    body["user"] = CONTEXT["username"]
    if body.get("workspace_id"):
        body["workspace_id"] = _member_workspace()[0]


def _explain_event(case):
    if "user" in (case.query or {}):
        case.query = {**case.query, "user": CONTEXT["username"]}


def _mute(case, body):
    if isinstance(body.get("workspace_id"), str) and body["workspace_id"]:
        body["workspace_id"] = _member_workspace()[0]
    if body.get("until") is not None:
        body["until"] = _time(hours=1)


def _silence(case, body):
    matchers = body.get("matchers")
    if isinstance(matchers, dict) and "workspace_id" in matchers:
        body["matchers"] = {**matchers, "workspace_id": _member_workspace()[0]}
    if "starts_at" in body:
        body["starts_at"] = _time(minutes=-5)
    if "ends_at" in body:
        body["ends_at"] = _time(hours=1)


def _snooze(case, body):
    if "until" in body:
        body["until"] = _time(hours=1)


def _webhook(case, body):
    """An existing workspace, a receiver URL; a PagerDuty endpoint (so made, or stored so)
    has a routing key."""
    if isinstance(body.get("workspace_id"), str) and body["workspace_id"]:
        body["workspace_id"] = _member_workspace()[0]
    if "url" in body:
        body["url"] = _pick(CONTEXT["webhook_urls"])
    stored = {}
    if "format" not in body and "id" in (case.path_parameters or {}):
        stored = _get(f"/api/webhook-endpoints/{case.path_parameters['id']}/") or {}
    if body.get("format", stored.get("format")) == "pagerduty" and not body.get("routing_key"):
        body["routing_key"] = "R0UT1NGKEY0000000000000000000000"


def _member(case, body):
    body["username"] = _pick(sorted(CONTEXT["user_ids"]))


def _routing_file(case, body):
    """A routing file, as ``yaml`` or as the uploaded ``file`` (only a multipart body
    carries a file)."""
    text = _pick(CONTEXT["routing_files"])
    if "file" in body and (case.media_type or "").startswith("multipart/"):
        body["file"] = text
        body.pop("yaml", None)
    else:
        body.pop("file", None)
        body["yaml"] = text


def _preferences(case, body):
    """Quiet hours end at another time than they start."""
    hours = body.get("quiet_hours")
    if isinstance(hours, dict) and hours.get("start") == hours.get("end") is not None:
        hour, minute = hours["start"].split(":")
        body["quiet_hours"] = {**hours, "end": f"{(int(hour) + 1) % 24:02d}:{minute}"}


def _resolves(case, body):
    if isinstance(body.get("resolves"), list):
        body["resolves"] = [k for k in body["resolves"] if k != case.path_parameters["key"]]


def _email_settings(case, body):
    """Settings that will be enabled (the body does not switch them off) name a host and a
    from address: ``enabled`` needs them, given here or stored."""
    if body.get("enabled") is not False:
        body["host"] = body.get("host") or "mail.example.com"
        body["from_email"] = body.get("from_email") or "datafi@example.com"


#: operation -> what it takes that exists (a function of the case and a copy of its body).
BODIES = {
    "POST /api/auth/token/": _credentials,
    "POST /api/events/": _emit,
    "POST /api/routing/explain/": _explain,
    "POST /api/mutes/": _mute,
    "POST /api/silences/": _silence, "PUT /api/silences/{id}/": _silence,
    "PATCH /api/silences/{id}/": _silence,
    "POST /api/notifications/{id}/snooze/": _snooze,
    "POST /api/webhook-endpoints/": _webhook, "PUT /api/webhook-endpoints/{id}/": _webhook,
    "PATCH /api/webhook-endpoints/{id}/": _webhook,
    "POST /api/workspaces/{workspace_id}/members/": _member,
    "POST /api/routing/import/": _routing_file,
    "PATCH /api/event-types/{key}/": _resolves,
    "PUT /api/email-settings/": _email_settings, "PATCH /api/email-settings/": _email_settings,
    "PUT /api/preferences/": _preferences,
}
QUERIES = {
    "GET /api/notifications/": _cursors, "GET /api/deliveries/": _cursors,
    "GET /api/events/{event_id}/explain/": _explain_event,
}


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    label = f"{case.method.upper()} {case.operation.path}"
    if label in QUERIES:
        QUERIES[label](case)
    body = _body(case)
    if label in BODIES and body is not None:
        BODIES[label](case, body)
        case.body = body
    return case
