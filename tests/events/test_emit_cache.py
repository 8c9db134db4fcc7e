"""emit() near the floor: event types cached per process, workspaces found with the catalog
version in one query, and a change to an event type seen by the next emit wherever it
was made."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events import emit
from events.exceptions import UnknownEventType, UnknownWorkspace
from events.models import Event, EventType
from events.services.catalog import event_type_update


def emit_one(workspace, **kwargs):
    return emit("data_source.connection_lost", workspace=workspace.public_id,
                payload={"datasource_name": "warehouse"}, **kwargs)


def test_a_warm_emit_by_key_and_workspace_id_is_one_lookup_and_one_insert(
        make_workspace, django_assert_num_queries):
    workspace = make_workspace(members=3)
    emit_one(workspace)  # warms this process's cache

    with django_assert_num_queries(2) as queries:
        event = emit_one(workspace)

    lookup, insert = (q["sql"] for q in queries.captured_queries)
    assert "events_catalogversion" in lookup and "events_workspace" in lookup
    assert insert.startswith("INSERT")
    assert "events_eventtype" not in " ".join([lookup, insert])
    stored = Event.objects.select_related("workspace").get(pk=event.pk)
    assert (stored.workspace, stored.priority) == (workspace, "critical")
    assert event.workspace.name == workspace.name  # the rest of the workspace loads on access


def test_emit_stays_flat_from_one_to_many_members(make_workspace):
    def queries_for(workspace):
        emit_one(workspace)
        with CaptureQueriesContext(connection) as queries:
            emit_one(workspace)
        return len(queries.captured_queries)

    assert queries_for(make_workspace("One", members=1)) == queries_for(
        make_workspace("Many", members=60)) == 2


def test_an_unknown_workspace_or_type_is_still_refused(make_workspace):
    workspace = make_workspace()
    emit_one(workspace)
    with pytest.raises(UnknownWorkspace, match="ws_nope"):
        emit("data_source.connection_lost", workspace="ws_nope")
    with pytest.raises(UnknownEventType, match="no.such"):
        emit("no.such", workspace=workspace.public_id)


def test_a_change_through_the_service_applies_to_the_next_emit(make_workspace):
    workspace = make_workspace()
    assert emit_one(workspace).priority == "critical"
    event_type = EventType.objects.get(key="data_source.connection_lost")

    event_type_update(event_type=event_type, priority_override="low")
    assert emit_one(workspace).priority == "low"
    event_type_update(event_type=event_type, enabled=False)
    assert emit_one(workspace).status == Event.Status.SUPPRESSED


def test_a_change_behind_the_services_back_applies_to_the_next_emit(make_workspace):
    workspace = make_workspace()
    assert emit_one(workspace).status == Event.Status.PENDING

    with connection.cursor() as cursor:  # raw SQL, as a script or another process might
        cursor.execute("UPDATE events_eventtype SET enabled = %s, priority_override = %s "
                       "WHERE key = %s", [False, "high", "data_source.connection_lost"])

    event = emit_one(workspace)
    assert (event.status, event.priority) == (Event.Status.SUPPRESSED, "high")


def test_a_change_committed_by_another_connection_applies_to_the_next_emit(live_db,
                                                                          make_workspace):
    workspace = make_workspace()
    assert emit_one(workspace).priority == "critical"

    def admin_elsewhere():  # its own thread, so its own database connection and commit
        try:
            event_type_update(event_type=EventType.objects.get(key="data_source.connection_lost"),
                              priority_override="medium", enabled=True)
        finally:
            connection.close()

    thread = threading.Thread(target=admin_elsewhere)
    thread.start()
    thread.join(timeout=60)

    assert emit_one(workspace).priority == "medium"
