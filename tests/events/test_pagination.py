"""Cursor pagination (events.api.pagination): a forged cursor is a 400 naming ``cursor``.

Every cursor-paginated list of the API is found from the URL configuration, so a list
added later is covered (and must use the shared class) without editing this file.
"""

import base64
import re
from datetime import UTC, timedelta, timezone
from urllib.parse import quote_from_bytes

import pytest
from django.urls import URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.pagination import CursorPagination as DRFCursorPagination

from events.api.pagination import CursorPagination
from notifications.models import Delivery, Notification
from tests.support import api_client_for, emit_and_route


def _routes(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + re.sub(r"^\^|\$$", "", str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield "/" + route, pattern.callback


def cursor_paginated_lists() -> dict[str, type]:
    """``{route: pagination class}`` of every GET that pages with a cursor."""
    found = {}
    for route, callback in _routes(get_resolver().url_patterns):
        view = getattr(callback, "cls", None)
        actions = getattr(callback, "actions", None)
        if view is None or (actions or {"get": "list"}).get("get") != "list":
            continue
        paginator = callback.initkwargs.get("pagination_class",
                                            getattr(view, "pagination_class", None))
        if paginator and issubclass(paginator, DRFCursorPagination):
            found[route] = paginator
    return found


PAGINATED = cursor_paginated_lists()


def test_every_cursor_paginated_list_uses_the_shared_class():
    assert {"/api/notifications/", "/api/deliveries/"} <= set(PAGINATED)
    for route, paginator in PAGINATED.items():
        assert issubclass(paginator, CursorPagination), route
        assert "<" not in route and "(?P" not in route, \
            f"{route}: fill in its path parameters in these tests"


@pytest.fixture
def rows(make_user, make_workspace):
    """A superuser with notifications, and deliveries: real positions on every list."""
    root = make_user("root", superuser=True)
    workspace = make_workspace(users=[root], members=2)
    for n in range(3):
        emit_and_route("query.long_running_query", workspace, query_name=f"q{n}")
    for n in range(5):
        Notification.objects.create(user=root, kind=Notification.Kind.EVENT, priority="high",
                                    category="queries", event_type_key="queries.thing",
                                    title=f"n{n}")
    assert Delivery.objects.count() >= 5
    return api_client_for(root)


def pages(api, url, *, direction):
    """The ids of each page from ``url`` on, following its ``direction`` links."""
    found, response = [], api.get(url)
    while True:
        assert response.status_code == 200, response.content
        page = response.json()
        found.append([item["id"] for item in page["results"]])
        if page[direction] is None:
            return found
        response = api.get(page[direction])


@pytest.mark.parametrize("route", sorted(PAGINATED))
def test_the_cursors_a_list_gives_out_page_both_ways(rows, route):
    [everything] = pages(rows, f"{route}?page_size=100", direction="next")
    forward = pages(rows, f"{route}?page_size=2", direction="next")
    last = rows.get(f"{route}?page_size=2&cursor=" + forward_cursor(rows, route, len(forward)))
    backward = pages(rows, last.json()["previous"], direction="previous")

    assert len(everything) >= 5
    assert sum(forward, []) == everything
    assert sum(reversed(backward), []) + [item["id"] for item in last.json()["results"]] \
        == everything


def forward_cursor(api, route, page_number):
    """The cursor of page ``page_number`` (from 1) of ``route`` in pages of 2."""
    response = api.get(f"{route}?page_size=2")
    for _ in range(page_number - 1):
        response = api.get(response.json()["next"])
    return response.wsgi_request.GET.get("cursor", "")


@pytest.mark.parametrize("route", sorted(PAGINATED))
@pytest.mark.parametrize("cursor", [
    "cD1hYmM=",  # p=abc: the outside probe's forged cursor
    "cD0yMDI0LTAxLTAx",  # p=2024-01-01: a date, not a position this list writes
    "bz0tMQ==",  # o=-1
    "cj14",  # r=x
])
def test_a_forged_cursor_is_a_400_naming_cursor(rows, route, cursor):
    response = rows.get(route, {"cursor": cursor})

    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]
    assert "cursor" in response.json()["cursor"][0]


# --- property: whatever the cursor, never a 500 -------------------------------------------

ZONES = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=1, max_value=50).map(str),  # near the real ids
    st.integers(min_value=4000, max_value=20_000).map(lambda n: "9" * n),  # huge
    st.datetimes(timezones=st.sampled_from(ZONES)).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["0", "1", "", "\x00", "-1", "1e3", " 1", "nan"]),
)
QUERY_STRINGS = st.lists(
    st.tuples(st.sampled_from(["p", "o", "r", "x"]), VALUES), max_size=4,
).map(lambda pairs: "&".join(f"{key}={value}" for key, value in pairs).encode(
    "utf-8", "surrogatepass"))
ENCODED = st.tuples(
    st.one_of(QUERY_STRINGS, st.binary(max_size=40)),  # a query string, or any bytes
    st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]),
    st.booleans(),
).map(lambda t: t[1](t[0]).rstrip(b"=" if t[2] else b""))
CURSORS = st.one_of(
    st.text(max_size=40).map(lambda s: s.encode("utf-8")),  # random strings
    st.binary(max_size=40),  # not UTF-8, NUL
    ENCODED,
)


@pytest.mark.parametrize("route", sorted(PAGINATED))
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cursor=CURSORS)
def test_any_cursor_is_a_page_or_a_400_naming_cursor(rows, route, cursor):
    response = rows.get(route, QUERY_STRING="cursor=" + quote_from_bytes(cursor, safe=""))

    assert response.status_code in (200, 400), (cursor, response.content[:300])
    if response.status_code == 400:
        assert list(response.json()) == ["cursor"], (cursor, response.json())
