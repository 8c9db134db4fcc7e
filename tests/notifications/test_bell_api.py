"""What the bell polls: ETags on the unread count and the list (an idle poll is a 304
costing one query), and marking several notifications read at once."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification
from notifications.services.reading import notification_mark_unread
from tests.support import api_client_for, emit_and_route

COUNT_URL = "/api/notifications/unread-count/"
LIST_URL = "/api/notifications/"
BULK_URL = "/api/notifications/read/"


@pytest.fixture
def alice_workspace(make_workspace, user):
    return make_workspace(users=[user])


def poll(client, url=COUNT_URL, etag=None):
    headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
    return client.get(url, **headers)


def test_an_idle_poll_answers_304_with_one_query(api, alice_workspace,
                                                 django_assert_max_num_queries):
    emit_and_route("query.query_failed", alice_workspace, query_name="Daily KPIs")
    first = poll(api)
    assert first.status_code == 200 and first.json()["count"] == 1
    etag = first["ETag"]
    assert etag.startswith('"') and first["Cache-Control"] == "no-store"

    with django_assert_max_num_queries(1):
        again = poll(api, etag=etag)

    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == etag and again["Cache-Control"] == "no-store"


def test_an_idle_poll_with_a_browser_session_adds_only_the_sessions_queries(
        user, alice_workspace):
    emit_and_route("query.query_failed", alice_workspace, query_name="Daily KPIs")
    browser = Client()
    browser.force_login(user)
    etag = poll(browser)["ETag"]

    with CaptureQueriesContext(connection) as queries:
        assert poll(browser, etag=etag).status_code == 304

    # The session row, the user row, and the one notification version query.
    assert len(queries) == 3
    assert "notifications_notification" in queries[-1]["sql"]


def test_the_bell_state_query_uses_indexes_on_postgresql(postgres, api, user, alice_workspace):
    emit_and_route("query.query_failed", alice_workspace, query_name="Daily KPIs")
    etag = poll(api)["ETag"]
    with CaptureQueriesContext(connection) as queries:
        poll(api, etag=etag)
    sql = queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table: ask what it *can* use
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "Seq Scan" not in plan, plan  # every part is an index lookup by user
    assert plan.count(f"Index Cond: (user_id = {user.pk})") == 3, plan


@pytest.mark.parametrize("change", ["new", "read", "unread", "read_all", "bulk_read", "swap"])
def test_the_etag_changes_whenever_the_bell_would_show_something_else(
        api, user, alice_workspace, change):
    first = emit_and_route("query.query_failed", alice_workspace, query_name="one")
    emit_and_route("query.query_failed", alice_workspace, query_name="two")
    mine = {n.event_id: n for n in Notification.objects.filter(user=user)}
    if change == "unread" or change == "swap":
        api.post(f"/api/notifications/{mine[first.pk].pk}/read/")
    etag, list_etag = poll(api)["ETag"], poll(api, LIST_URL)["ETag"]
    assert poll(api, etag=etag).status_code == 304
    assert poll(api, LIST_URL, etag=list_etag).status_code == 304

    if change == "new":
        emit_and_route("query.query_failed", alice_workspace, query_name="three")
    elif change == "read":
        api.post(f"/api/notifications/{mine[first.pk].pk}/read/")
    elif change == "unread":
        api.post(f"/api/notifications/{mine[first.pk].pk}/unread/")
    elif change == "read_all":
        api.post("/api/notifications/read-all/")
    elif change == "bulk_read":
        api.post(BULK_URL, {"ids": [mine[first.pk].pk]}, format="json")
    elif change == "swap":  # one read, another unread: the count stays the same
        notification_mark_unread(notification=Notification.objects.get(pk=mine[first.pk].pk))
        api.post("/api/notifications/read-all/")
        notification_mark_unread(notification=Notification.objects.get(pk=mine[first.pk].pk))

    fresh = poll(api, etag=etag)
    assert fresh.status_code == 200 and fresh["ETag"] != etag
    assert poll(api, LIST_URL, etag=list_etag).status_code == 200


def test_etags_differ_per_user_and_per_filter(api, make_user, make_workspace, user):
    bob = make_user("bob")
    workspace = make_workspace(users=[user, bob])
    emit_and_route("query.query_failed", workspace, query_name="one")
    mine = poll(api)["ETag"]
    bobs_api = api_client_for(bob)
    assert poll(bobs_api)["ETag"] != mine
    assert poll(bobs_api, etag=mine).status_code == 200  # never someone else's 304
    assert poll(api, LIST_URL)["ETag"] != poll(api, LIST_URL + "?unread=true")["ETag"]


def test_an_unchanged_list_answers_304(api, alice_workspace, django_assert_max_num_queries):
    emit_and_route("query.query_failed", alice_workspace, query_name="one")
    first = poll(api, LIST_URL)
    assert first.status_code == 200 and len(first.json()["results"]) == 1
    with django_assert_max_num_queries(1):
        assert poll(api, LIST_URL, etag=first["ETag"]).status_code == 304


def test_marking_several_read_touches_only_your_own(api, user, make_user, make_workspace):
    bob = make_user("bob")
    workspace = make_workspace(users=[user, bob])
    for name in ("one", "two", "three"):
        emit_and_route("query.query_failed", workspace, query_name=name)
    mine = list(Notification.objects.filter(user=user).order_by("id"))
    bobs = list(Notification.objects.filter(user=bob))

    response = api.post(BULK_URL, {"ids": [mine[0].pk, mine[1].pk, bobs[0].pk, 999999]},
                        format="json")

    assert response.status_code == 200 and response.json() == {"marked": 2}
    assert [n.is_read for n in Notification.objects.filter(user=user).order_by("id")] == [
        True, True, False]
    assert not Notification.objects.filter(user=bob, read_at__isnull=False).exists()
    assert api.get(COUNT_URL).json()["count"] == 1
    # Repeating it changes nothing.
    assert api.post(BULK_URL, {"ids": [mine[0].pk]}, format="json").json() == {"marked": 0}


@pytest.mark.parametrize("body", [
    {}, {"ids": []}, {"ids": ["x"]}, {"ids": 3}, {"ids": [10**30]}, {"ids": [0]},
    {"ids": list(range(1, 100_002))}, {"ids": ["x"] * 1000},
], ids=["none", "empty", "string", "number", "huge-id", "zero", "100001-ids",
        "1000-strings"])
def test_marking_several_read_needs_a_list_of_ids(api, body):
    response = api.post(BULK_URL, body, format="json")
    assert response.status_code == 400 and list(response.json()) == ["ids"]
    assert len(response.content) < 600  # names the problem; does not echo the list


def test_marking_several_read_needs_the_csrf_token_with_a_session(user, alice_workspace):
    emit_and_route("query.query_failed", alice_workspace, query_name="one")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    ids = list(Notification.objects.values_list("pk", flat=True))
    assert browser.post(BULK_URL, {"ids": ids}, content_type="application/json"
                        ).status_code == 403
    browser.get("/notifications/")  # the page sets the CSRF cookie its scripts send back
    token = browser.cookies["csrftoken"].value
    response = browser.post(BULK_URL, {"ids": ids}, content_type="application/json",
                            HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and response.json() == {"marked": 1}
