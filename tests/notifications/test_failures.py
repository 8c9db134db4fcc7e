"""A routing or flush that fails for an unexpected reason: bounded retries, then a failure on
record, and never a stuck bucket or an event re-enqueued forever."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config import control_plane
from events import emit
from events.models import Event
from events.services.outbox import outbox_sweep
from notifications import tasks as notification_tasks
from notifications.models import Delivery, Digest, Notification
from notifications.routing import plan
from notifications.services.digests import digest_flush
from tests.support import api_client_for, emit_and_route

MEDIUM = "query.long_running_query"


@pytest.fixture
def routing_breaks(monkeypatch):
    """Make routing fail the way an unexpected bug would, counting the attempts."""
    calls = []

    def broken(events):
        calls.append([event.pk for event in events])
        raise RuntimeError("audience lookup exploded")

    monkeypatch.setattr(plan, "audiences_get", broken)
    return calls


def test_routing_that_keeps_failing_is_retried_then_marked_failed(
    db, make_workspace, routing_breaks
):
    event = emit("data_source.connection_lost", workspace=make_workspace(members=1),
                 payload={"datasource_name": "Snowflake"})

    notification_tasks.event_route.apply(kwargs={"event_id": str(event.pk)})

    assert len(routing_breaks) == 1 + control_plane.spec(control_plane.EVENT_ROUTE).retries
    event.refresh_from_db()
    assert event.status == Event.Status.FAILED
    assert event.last_error == "RuntimeError: audience lookup exploded"
    assert event.next_sweep_at is None


def test_a_failed_event_is_not_enqueued_again_by_the_sweep(db, make_workspace, routing_breaks,
                                                          monkeypatch):
    event = emit("data_source.connection_lost", workspace=make_workspace(members=1))
    notification_tasks.event_route.apply(kwargs={"event_id": str(event.pk)})
    published = []
    monkeypatch.setattr("events.dispatch.publish",
                        lambda job, **kwargs: published.append(kwargs))
    Event.objects.filter(pk=event.pk).update(next_sweep_at=timezone.now() - timedelta(hours=1))

    assert outbox_sweep() == 0
    assert published == []


def test_routing_that_recovers_on_a_retry_routes_the_event(db, make_workspace, monkeypatch):
    real = plan.audiences_get
    failures = iter([RuntimeError("flaky")])

    def flaky(events):
        for exc in failures:
            raise exc
        return real(events)

    monkeypatch.setattr(plan, "audiences_get", flaky)
    workspace = make_workspace(members=2)
    event = emit("data_source.connection_lost", workspace=workspace)

    notification_tasks.event_route.apply(kwargs={"event_id": str(event.pk)})

    event.refresh_from_db()
    assert event.status == Event.Status.ROUTED
    assert event.last_error == ""
    assert Notification.objects.filter(event=event).count() == 2


def test_a_failed_event_is_visible_in_the_admin_list_and_filter(
    db, make_workspace, make_user, client, routing_breaks
):
    failed = emit("data_source.connection_lost", workspace=make_workspace(members=1))
    notification_tasks.event_route.apply(kwargs={"event_id": str(failed.pk)})
    emit("query.query_failed")  # pending, not failed
    client.force_login(make_user(superuser=True))

    page = client.get("/admin/events/event/?status__exact=failed").content.decode()

    assert "RuntimeError: audience lookup exploded" in page
    assert "1 event" in page
    detail = client.get(f"/admin/events/event/{failed.pk}/change/").content.decode()
    assert "RuntimeError: audience lookup exploded" in detail


def test_the_api_event_carries_status_and_last_error(db, make_user):
    response = api_client_for(make_user(superuser=True)).post(
        "/api/events/", {"event_type": "query.query_failed"}, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert response.json()["last_error"] == ""


def test_a_flush_that_keeps_failing_is_retried_a_bounded_number_of_times(db, monkeypatch):
    calls = []

    def broken(*, bucket):
        calls.append(bucket)
        raise RuntimeError("database went away")

    monkeypatch.setattr(notification_tasks.digests, "digest_flush", broken)

    notification_tasks.digest_flush.apply(kwargs={"bucket": "5m"})

    assert calls == ["5m"] * (1 + control_plane.spec(control_plane.DIGEST_FLUSH).retries)


# --- one bad digest does not stop the others ----------------------------------------------

@pytest.fixture
def broken_bell(postgres, django_db_blocker):
    """PostgreSQL refuses every notification for one user: a fault inside the database."""

    def break_for(user):
        with connection.cursor() as cursor:
            cursor.execute("""
                CREATE FUNCTION refuse_notification() RETURNS trigger AS $$
                BEGIN
                    IF NEW.user_id = USER_ID THEN
                        RAISE EXCEPTION 'bell of user % is broken', NEW.user_id;
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql
            """.replace("USER_ID", str(int(user.pk))))
            cursor.execute("""
                CREATE TRIGGER refuse_notification BEFORE INSERT ON notifications_notification
                FOR EACH ROW EXECUTE FUNCTION refuse_notification()
            """)

    return break_for  # created inside the test's transaction: rolled back with it


def test_one_digest_that_cannot_be_sent_does_not_stop_the_bucket(
    db, broken_bell, make_workspace, make_user
):
    workspace = make_workspace(members=3)
    unlucky, *others = workspace.people
    for n in range(2):
        emit_and_route(MEDIUM, workspace, query_name=f"q{n}")
    broken_bell(unlucky)

    assert digest_flush(bucket="5m").digests_sent == 2  # what the flush task runs
    for person in others:
        assert Notification.objects.get(user=person).items[1]["title"] == (
            "Long-running query: q1")
    digest = Digest.objects.get(user=unlucky)
    assert digest.status == Digest.Status.CLAIMED  # the next flush tries again
    assert digest.attempts == 1
    assert "bell of user" in digest.last_error

    for _ in range(2):
        assert digest_flush(bucket="5m").digests_sent == 0

    digest.refresh_from_db()
    assert digest.status == Digest.Status.FAILED
    assert digest.attempts == 3
    items = Delivery.objects.filter(digest=digest)
    assert {item.status for item in items} == {Delivery.Status.FAILED}
    assert all("bell of user" in item.last_error for item in items)
    assert Digest.objects.filter(status=Digest.Status.DELIVERED).count() == 2
    assert not Notification.objects.filter(user=unlucky).exists()
