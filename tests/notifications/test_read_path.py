"""The lean read path: list and unread count in a constant number of queries, the list's
hand-written representation equal to DRF's, routing flat in the audience size."""

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.utils.encoders import JSONEncoder

from notifications.api.serializers import NotificationSerializer
from notifications.routing.route import event_route
from notifications.selectors.bell import notification_list
from notifications.services.digests import digest_flush
from notifications.services.reading import notification_mark_read
from tests.support import api_client_for, emit_and_route

LIST_URL = "/api/notifications/"


def fill_bell(make_workspace, user, events: int):
    workspace = make_workspace(users=[user])
    for n in range(events):
        emit_and_route("data_source.connection_lost", workspace, datasource_name=f"db{n}")
        emit_and_route("query.long_running_query", workspace, query_name=f"q{n}")
    digest_flush(bucket="5m")


def list_queries(api) -> tuple[int, list]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(LIST_URL)
    assert response.status_code == 200
    return len(queries), response.json()["results"]


def test_the_list_is_a_constant_number_of_queries(make_workspace, make_user):
    few, many = make_user(), make_user()
    fill_bell(make_workspace, few, 2)
    fill_bell(make_workspace, many, 60)

    few_queries, few_rows = list_queries(api_client_for(few))
    many_queries, many_rows = list_queries(api_client_for(many))

    assert (len(few_rows), len(many_rows)) == (3, 50)
    assert few_queries == many_queries <= 2


def test_the_lean_representation_equals_drfs(make_workspace, user):
    fill_bell(make_workspace, user, 3)
    first = user.notifications.filter(kind="event").first()
    notification_mark_read(notification=first)
    serializer = NotificationSerializer()

    rows = list(notification_list(user=user))
    assert {row.kind for row in rows} == {"event", "digest"}
    for row in rows:
        lean = serializer.to_representation(row)
        generic = serializers.ModelSerializer.to_representation(serializer, row)
        assert list(lean) == NotificationSerializer.Meta.fields
        assert json.dumps(lean, cls=JSONEncoder) == json.dumps(generic, cls=JSONEncoder)


def test_unread_count_and_its_etag_are_one_query(make_workspace, user,
                                                 django_assert_num_queries):
    fill_bell(make_workspace, user, 3)
    api = api_client_for(user)
    with django_assert_num_queries(1):  # the bell's version (its ETag) and the counts
        response = api.get(f"{LIST_URL}unread-count/")
    assert response.json()["count"] == 4
    with django_assert_num_queries(1):
        again = api.get(f"{LIST_URL}unread-count/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def routing_queries(make_workspace, members: int) -> int:
    from events import emit

    workspace = make_workspace(f"ws{members}", members=members)
    event = emit("data_source.connection_lost", workspace=workspace,
                 payload={"datasource_name": "x"})
    with CaptureQueriesContext(connection) as queries:
        result = event_route(event_id=event.pk)
    assert result.channels["in_app"] == members
    return len(queries)


def test_routing_one_event_is_flat_in_the_audience(make_workspace):
    # 40 members: within one insert on SQLite too (it splits an insert of over 999 values).
    assert routing_queries(make_workspace, 1) == routing_queries(make_workspace, 40)


def test_notifications_table_is_vacuumed_early(postgres, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s",
                       ["notifications_notification"])
        options = cursor.fetchone()[0]
    assert "autovacuum_vacuum_scale_factor=0.01" in options
