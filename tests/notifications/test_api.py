"""REST: a user's notifications (/api/notifications/...), auth, and the OpenAPI schema."""

from datetime import datetime

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events import emit
from events.models import Event
from notifications.models import Notification
from notifications.routing.route import event_route
from notifications.services.digests import digest_flush

LIST_URL = "/api/notifications/"
UNREAD_COUNT_URL = "/api/notifications/unread-count/"
READ_ALL_URL = "/api/notifications/read-all/"
PRIORITIES = ["critical", "high", "medium", "low", "info"]


def notify(user, *, priority="high", category="queries", workspace=None, read=False,
           title=None, kind=Notification.Kind.EVENT, items=None):
    return Notification.objects.create(
        user=user, kind=kind, priority=priority, category=category, workspace=workspace,
        event_type_key="digest" if kind == Notification.Kind.DIGEST else f"{category}.thing",
        title=title or f"{priority} in {category}", items=items or [],
        read_at=timezone.now() if read else None,
    )


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def route(event) -> None:
    """What the worker does after commit, run here synchronously."""
    event_route(event_id=event.pk)


@pytest.fixture
def bob(make_user):
    return make_user("bob")


# --- listing ------------------------------------------------------------------------------

def test_list_has_only_own_notifications_newest_first(api, user, bob):
    mine = [notify(user, title=f"mine {n}") for n in range(3)]
    notify(bob, title="bob's")
    newest = notify(user, title="mine newest")

    response = api.get(LIST_URL)

    assert ids(response) == [newest.pk, *reversed([n.pk for n in mine])]
    first = response.json()["results"][0]
    assert first["title"] == "mine newest"
    assert first["is_read"] is False
    assert first["item_count"] == 1
    assert "bob's" not in [item["title"] for item in response.json()["results"]]


def test_routed_event_appears_for_each_member_with_its_workspace(api, user, bob,
                                                                 make_workspace):
    workspace = make_workspace(users=[user, bob])
    outsider_workspace = make_workspace("Other", members=1)
    event = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "Production Snowflake"})
    emit_elsewhere = emit("data_source.connection_lost", workspace=outsider_workspace,
                          payload={"datasource_name": "Elsewhere"})
    route(event)
    route(emit_elsewhere)

    results = api.get(LIST_URL).json()["results"]

    assert len(results) == 1
    assert results[0]["title"] == "Connection lost: Production Snowflake"
    assert results[0]["kind"] == "event"
    assert results[0]["priority"] == "critical"
    assert results[0]["category"] == "data_sources"
    assert results[0]["event_type"] == "data_source.connection_lost"
    assert results[0]["event_id"] == str(event.pk)
    assert results[0]["workspace_id"] == workspace.public_id
    assert results[0]["workspace_name"] == workspace.name
    assert results[0]["payload"] == {"datasource_name": "Production Snowflake"}
    assert Notification.objects.filter(user=bob, event=event).exists()


def test_cursor_pagination_returns_every_row_exactly_once(api, user, bob):
    created = [notify(user, title=f"n{n}") for n in range(11)]
    notify(bob)

    seen, pages = [], 0
    response = api.get(LIST_URL, {"page_size": 4})
    while True:
        pages += 1
        seen += ids(response)
        assert len(ids(response)) <= 4
        next_url = response.json()["next"]
        if next_url is None:
            break
        response = api.get(next_url)

    assert pages == 3
    assert seen == sorted((n.pk for n in created), reverse=True)


def test_rows_created_while_paging_do_not_repeat_or_shift_pages(api, user):
    created = [notify(user) for _ in range(6)]

    first = api.get(LIST_URL, {"page_size": 3})
    notify(user, title="arrived meanwhile")
    second = api.get(first.json()["next"])

    assert ids(first) + ids(second) == sorted((n.pk for n in created), reverse=True)


def test_pagination_keeps_the_filter(api, user):
    unread = [notify(user) for _ in range(5)]
    for _ in range(4):
        notify(user, read=True)

    seen = []
    response = api.get(LIST_URL, {"unread": "true", "page_size": 2})
    while response is not None:
        seen += ids(response)
        next_url = response.json()["next"]
        response = api.get(next_url) if next_url else None

    assert seen == sorted((n.pk for n in unread), reverse=True)


@pytest.mark.parametrize(("params", "expected"), [
    ({"unread": "true"}, ["unread-critical-queries-ws", "unread-info-users"]),
    ({"unread": "false"}, ["read-high-queries-ws", "read-critical-policies"]),
    ({"priority": "critical"}, ["unread-critical-queries-ws", "read-critical-policies"]),
    ({"category": "queries"}, ["unread-critical-queries-ws", "read-high-queries-ws"]),
    ({"workspace": "WORKSPACE"}, ["unread-critical-queries-ws", "read-high-queries-ws"]),
    ({"unread": "true", "priority": "critical", "category": "queries"},
     ["unread-critical-queries-ws"]),
    ({"category": "ai_ml"}, []),
    ({"workspace": "ws_unknown"}, []),
])
def test_filters(api, user, bob, make_workspace, params, expected):
    workspace = make_workspace(users=[user])
    other_workspace = make_workspace("Other", users=[user])
    notify(user, title="read-critical-policies", priority="critical", category="policies",
           workspace=other_workspace, read=True)
    notify(user, title="read-high-queries-ws", priority="high", category="queries",
           workspace=workspace, read=True)
    notify(user, title="unread-info-users", priority="info", category="users")
    notify(user, title="unread-critical-queries-ws", priority="critical", category="queries",
           workspace=workspace)
    notify(bob, title="bob-unread-critical-queries-ws", priority="critical",
           category="queries", workspace=workspace)
    params = {k: (workspace.public_id if v == "WORKSPACE" else v) for k, v in params.items()}

    response = api.get(LIST_URL, params)

    assert response.status_code == 200
    assert [item["title"] for item in response.json()["results"]] == expected


def test_invalid_priority_filter_is_400(api, user):
    notify(user)

    response = api.get(LIST_URL, {"priority": "urgent"})

    assert response.status_code == 400
    assert "priority" in response.json()


def test_invalid_unread_filter_is_400(api, user):
    response = api.get(LIST_URL, {"unread": "maybe"})

    assert response.status_code == 400
    assert "unread" in response.json()


# --- unread count -------------------------------------------------------------------------

def test_unread_count_by_priority(api, user, bob):
    for priority in ["critical", "critical", "high", "info"]:
        notify(user, priority=priority)
    notify(user, priority="low", read=True)
    notify(bob, priority="medium")

    response = api.get(UNREAD_COUNT_URL)

    assert response.status_code == 200
    assert response.json() == {
        "count": 4,
        "by_priority": {"critical": 2, "high": 1, "medium": 0, "low": 0, "info": 1},
    }
    assert response["Cache-Control"] == "no-store"  # the bell polls it: never a stale count


def test_unread_count_with_nothing_lists_all_priorities(api):
    assert api.get(UNREAD_COUNT_URL).json() == {
        "count": 0, "by_priority": dict.fromkeys(PRIORITIES, 0)}


# --- read / unread ------------------------------------------------------------------------

def test_mark_read_then_unread(api, user):
    notification = notify(user)

    read = api.post(f"{LIST_URL}{notification.pk}/read/")
    assert read.status_code == 200
    assert read.json()["is_read"] is True
    assert read.json()["read_at"]
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert api.get(UNREAD_COUNT_URL).json()["count"] == 0
    assert ids(api.get(LIST_URL, {"unread": "false"})) == [notification.pk]

    unread = api.post(f"{LIST_URL}{notification.pk}/unread/")
    assert unread.status_code == 200
    assert unread.json()["is_read"] is False
    assert unread.json()["read_at"] is None
    notification.refresh_from_db()
    assert notification.read_at is None
    assert api.get(UNREAD_COUNT_URL).json()["count"] == 1


def test_marking_read_twice_keeps_the_first_read_time(api, user):
    notification = notify(user)

    first = api.post(f"{LIST_URL}{notification.pk}/read/").json()["read_at"]
    second = api.post(f"{LIST_URL}{notification.pk}/read/").json()["read_at"]

    assert first == second


def test_own_notification_detail(api, user):
    notification = notify(user, title="mine")

    response = api.get(f"{LIST_URL}{notification.pk}/")

    assert response.status_code == 200
    assert response.json()["title"] == "mine"


def test_another_users_notification_is_404_and_untouched(api, bob):
    unread_one = notify(bob)
    read_one = notify(bob, read=True)
    read_at = read_one.read_at

    assert api.get(f"{LIST_URL}{unread_one.pk}/").status_code == 404
    assert api.post(f"{LIST_URL}{unread_one.pk}/read/").status_code == 404
    assert api.post(f"{LIST_URL}{read_one.pk}/unread/").status_code == 404

    unread_one.refresh_from_db()
    read_one.refresh_from_db()
    assert unread_one.read_at is None
    assert read_one.read_at == read_at


def test_unknown_notification_is_404(api):
    assert api.post(f"{LIST_URL}999999/read/").status_code == 404


def test_read_all_marks_only_own(api, user, bob):
    mine = [notify(user) for _ in range(3)]
    already_read = notify(user, read=True)
    theirs = notify(bob)

    response = api.post(READ_ALL_URL)

    assert response.status_code == 200
    assert response.json() == {"marked": 3}
    assert not Notification.objects.filter(pk__in=[n.pk for n in mine],
                                           read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert Notification.objects.get(pk=already_read.pk).read_at == already_read.read_at
    assert api.get(UNREAD_COUNT_URL).json()["count"] == 0


# --- digests ------------------------------------------------------------------------------

def test_digest_lists_its_items_and_counts_once(api, user):
    items = [{"event_id": f"e{n}", "event_type": "user.user_invited", "category": "users",
              "priority": "info", "title": f"User invited: {n}@example.com",
              "workspace_id": None, "occurred_at": "2024-05-01T12:00:00+00:00"}
             for n in range(3)]
    digest = notify(user, kind=Notification.Kind.DIGEST, priority="info", category="users",
                    title="3 info notifications", items=items)
    notify(user, priority="high")

    results = api.get(LIST_URL).json()["results"]
    counts = api.get(UNREAD_COUNT_URL).json()

    by_id = {item["id"]: item for item in results}
    assert by_id[digest.pk]["kind"] == "digest"
    assert by_id[digest.pk]["item_count"] == 3
    assert [item["title"] for item in by_id[digest.pk]["items"]] == [
        "User invited: 0@example.com", "User invited: 1@example.com",
        "User invited: 2@example.com"]
    assert counts == {"count": 2, "by_priority": {"critical": 0, "high": 1, "medium": 0,
                                                  "low": 0, "info": 1}}


def test_flushed_medium_events_arrive_as_one_digest(api, user, make_workspace):
    workspace = make_workspace(users=[user])
    for name in ["etl", "report"]:
        route(emit("query.long_running_query", workspace=workspace,
                   payload={"query_name": name}))
    assert api.get(UNREAD_COUNT_URL).json()["count"] == 0  # waiting in the 5 min bucket

    digest_flush(bucket="5m")

    results = api.get(LIST_URL).json()["results"]
    assert len(results) == 1
    digest = results[0]
    assert digest["kind"] == "digest"
    assert digest["priority"] == "medium"
    assert digest["item_count"] == 2
    assert digest["workspace_id"] == workspace.public_id
    assert digest["workspace_name"] == workspace.name
    assert digest["payload"] is None
    etl, report = sorted(digest["items"], key=lambda item: item["title"])
    assert etl["title"] == "Long-running query: etl"
    assert (etl["workspace_id"], etl["workspace_name"]) == (workspace.public_id, workspace.name)
    assert report["title"] == "Long-running query: report"
    assert etl["event_type"] == "query.long_running_query"
    assert etl["priority"] == "medium"
    assert etl["payload"] == {"query_name": "etl"}
    assert report["payload"] == {"query_name": "report"}
    occurred = Event.objects.get(payload={"query_name": "etl"}).occurred_at
    assert datetime.fromisoformat(etl["occurred_at"]) == occurred
    assert api.get(UNREAD_COUNT_URL).json()["by_priority"]["medium"] == 1
    assert api.get(UNREAD_COUNT_URL).json()["count"] == 1

    assert api.post(f"{LIST_URL}{digest['id']}/read/").json()["is_read"] is True
    assert api.get(UNREAD_COUNT_URL).json()["count"] == 0


# --- query counts -------------------------------------------------------------------------

def fill(user, workspaces, count):
    for n in range(count):
        notify(user, priority=PRIORITIES[n % 5], read=n % 3 == 0,
               workspace=workspaces[n % len(workspaces)] if n % 2 else None)


def queries_for(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return len(captured)


def test_list_and_unread_count_queries_do_not_grow(make_user, make_workspace):
    small, large = make_user("small"), make_user("large")
    workspaces = [make_workspace(f"W{n}", users=[small, large]) for n in range(5)]
    fill(small, workspaces, 3)
    fill(large, workspaces, 40)
    clients = {}
    for person in (small, large):
        clients[person] = APIClient()
        clients[person].force_authenticate(person)

    for url, params in [(LIST_URL, {}), (LIST_URL, {"page_size": 200}),
                        (LIST_URL, {"unread": "true", "workspace": workspaces[1].public_id}),
                        (UNREAD_COUNT_URL, {})]:
        assert queries_for(clients[small], url, params) == queries_for(clients[large], url,
                                                                        params), url
    assert len(clients[large].get(LIST_URL, {"page_size": 200}).json()["results"]) == 40


# --- authentication -----------------------------------------------------------------------

@pytest.mark.parametrize(("method", "url"), [
    ("get", LIST_URL),
    ("get", f"{LIST_URL}ID/"),
    ("post", f"{LIST_URL}ID/read/"),
    ("post", f"{LIST_URL}ID/unread/"),
    ("post", READ_ALL_URL),
    ("get", UNREAD_COUNT_URL),
])
def test_anonymous_is_refused_everywhere(user, method, url):
    notification = notify(user)

    response = getattr(APIClient(), method)(url.replace("ID", str(notification.pk)))

    assert response.status_code in (401, 403)
    notification.refresh_from_db()
    assert notification.read_at is None


def test_token_authentication(user, bob):
    notify(user, title="mine")
    notify(bob, title="bob's")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.get(LIST_URL)

    assert [item["title"] for item in response.json()["results"]] == ["mine"]
    assert client.post(READ_ALL_URL).json() == {"marked": 1}


def test_wrong_token_is_refused(user):
    notify(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get(LIST_URL)

    assert response.status_code in (401, 403)
    assert "invalid token" in response.json()["detail"].lower()


def test_token_endpoint_issues_a_working_token(user):
    notify(user, title="mine")
    client = APIClient()

    response = client.post("/api/auth/token/", {"username": "alice", "password": "pw"},
                           format="json")

    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=user).key == key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert [item["title"] for item in client.get(LIST_URL).json()["results"]] == ["mine"]


def test_token_endpoint_refuses_a_wrong_password(user):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"},
                                format="json")

    assert response.status_code == 400
    assert not Token.objects.exists()


def test_session_authentication_reads_and_needs_csrf_to_write(user):
    notification = notify(user, title="mine")
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="pw")

    assert [item["title"] for item in client.get(LIST_URL).json()["results"]] == ["mine"]
    assert client.post(f"{LIST_URL}{notification.pk}/read/").status_code == 403
    notification.refresh_from_db()
    assert notification.read_at is None


# --- OpenAPI ------------------------------------------------------------------------------

def test_openapi_schema_documents_the_api(db):
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ["/api/notifications/", "/api/notifications/unread-count/",
                 "/api/notifications/{id}/read/", "/api/notifications/read-all/",
                 "/api/events/", "/api/event-types/", "/api/event-types/{key}/",
                 "/api/routing-rules/"]:
        assert path in paths, path
    assert "post" in paths["/api/events/"]
    assert "patch" in paths["/api/event-types/{key}/"]
    list_params = {p["name"] for p in paths["/api/notifications/"]["get"]["parameters"]}
    assert {"cursor", "page_size", "unread", "priority", "category", "workspace"} <= list_params


def test_openapi_schema_as_json(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "/api/notifications/" in response.json()["paths"]


def test_api_docs_page(db):
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    # The start script, which names the schema, is a request of its own (no inline script).
    assert b"/api/schema/" in APIClient().get("/api/docs/", {"script": ""}).content
    # Swagger UI comes from our own static files, so the page works without internet.
    html = response.content.decode()
    assert "cdn.jsdelivr.net" not in html
    bundle = html.split('src="')[1].split('"')[0]
    assert bundle.startswith("/static/") and APIClient().get(bundle).status_code == 200


def test_an_unknown_category_filter_is_a_400_naming_the_slugs(api):
    response = api.get("/api/notifications/", {"category": "data_source"})

    assert response.status_code == 400
    assert "unknown category 'data_source'" in response.json()["category"][0]
    assert "data_sources" in response.json()["category"][0]
