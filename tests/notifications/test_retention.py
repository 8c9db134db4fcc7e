"""Retention: what is older than the window and finished goes, with everything hanging off it;
whatever is still on its way stays, however old."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config import control_plane
from config.celery import app
from events.models import Category, Event
from notifications.models import Delivery, DeliveryAttempt, Digest, Notification, RoutingRule
from notifications.retention import retention_purge
from notifications.services.digests import digest_flush
from tests.support import emit_and_route

CRITICAL = "data_source.connection_lost"
MEDIUM = "query.long_running_query"


@pytest.fixture
def team(make_workspace, make_user):
    return make_workspace(users=[make_user("alice"), make_user("carol")])


@pytest.fixture
def by_email(db):
    """Data-source events go to the bell and by email: one email delivery per member."""
    RoutingRule.objects.create(category=Category.objects.get(slug="data_sources"),
                               channels=["in_app", "email"])


def age(days: int, *, events=(), digests=()) -> None:
    then = timezone.now() - timedelta(days=days)
    Event.objects.filter(pk__in=[e.pk for e in events]).update(created_at=then)
    Digest.objects.filter(pk__in=[d.pk for d in digests]).update(created_at=then)


def sent(event) -> None:
    """Its email deliveries delivered, after one attempt each."""
    for row in Delivery.objects.filter(event=event):
        DeliveryAttempt.objects.create(delivery=row, number=1, started_at=timezone.now(),
                                       outcome=DeliveryAttempt.Outcome.DELIVERED)
    Delivery.objects.filter(event=event).update(status=Delivery.Status.DELIVERED)


def left(event) -> tuple[int, int, int]:
    """What is left of ``event``: itself, its notifications, its deliveries."""
    return (Event.objects.filter(pk=event.pk).count(),
            Notification.objects.filter(event=event).count(),
            Delivery.objects.filter(event=event).count())


def test_an_old_finished_event_goes_with_its_notifications_deliveries_and_attempts(
        team, by_email):
    old = emit_and_route(CRITICAL, team, datasource_name="old")
    recent = emit_and_route(CRITICAL, team, datasource_name="recent")
    for event in (old, recent):
        sent(event)
    age(91, events=[old])
    assert left(old) == (1, 2, 2)

    result = retention_purge(days=90)

    assert left(old) == (0, 0, 0)
    assert not DeliveryAttempt.objects.filter(delivery__event_id=old.pk).exists()
    assert left(recent) == (1, 2, 2)
    assert DeliveryAttempt.objects.filter(delivery__event=recent).count() == 2
    assert result.deleted == {"events": 1, "digests": 0, "notifications": 2, "deliveries": 2,
                              "attempts": 2}


def test_unfinished_work_stays_however_old_and_goes_once_finished(team, by_email):
    retrying = emit_and_route(CRITICAL, team, datasource_name="retrying")
    sent(retrying)
    waiting_retry = Delivery.objects.filter(event=retrying).first()
    Delivery.objects.filter(pk=waiting_retry.pk).update(status=Delivery.Status.PENDING)
    in_bucket = emit_and_route(MEDIUM, team, query_name="nightly")  # waits for a 5m flush
    unrouted = emit_and_route(CRITICAL, team, datasource_name="unrouted")
    Event.objects.filter(pk=unrouted.pk).update(status=Event.Status.PENDING)
    age(200, events=[retrying, in_bucket, unrouted])

    retention_purge(days=90)

    assert left(retrying) == (1, 2, 2)  # the delivered one too: the event is kept whole
    assert left(in_bucket)[0] == 1 and Delivery.objects.filter(event=in_bucket).exists()
    assert left(unrouted)[0] == 1

    Delivery.objects.filter(pk=waiting_retry.pk).update(status=Delivery.Status.FAILED)
    retention_purge(days=90)

    assert left(retrying) == (0, 0, 0)
    assert left(in_bucket)[0] == 1 and left(unrouted)[0] == 1


def test_an_old_digest_goes_with_its_events_and_notifications_a_claimed_one_stays(team):
    events = [emit_and_route(MEDIUM, team, query_name=f"q{n}") for n in range(3)]
    digest_flush(bucket="5m")
    digests = list(Digest.objects.all())
    assert len(digests) == 2 and Notification.objects.filter(digest__isnull=False).count() == 2
    claimed = Digest.objects.create(channel="in_app", bucket="5m",
                                    status=Digest.Status.CLAIMED)
    age(100, events=events, digests=[*digests, claimed])

    result = retention_purge(days=90)

    assert list(Digest.objects.all()) == [claimed]
    assert not Event.objects.exists() and not Notification.objects.exists()
    assert not Delivery.objects.exists()
    assert (result.deleted["events"], result.deleted["digests"],
            result.deleted["notifications"]) == (3, 2, 2)


def test_a_digest_listing_a_kept_event_stays_with_it(team, by_email):
    events = [emit_and_route(MEDIUM, team, query_name=f"q{n}") for n in range(2)]
    digest_flush(bucket="5m")
    kept = events[0]
    Delivery.objects.create(event=kept, channel="email", target="ops@example.com",
                            priority="medium", status=Delivery.Status.PENDING)
    age(100, events=events, digests=Digest.objects.all())

    retention_purge(days=90)

    assert list(Event.objects.values_list("pk", flat=True)) == [kept.pk]
    assert Digest.objects.count() == 2  # each lists the kept event
    assert Notification.objects.filter(digest__isnull=False).count() == 2


def test_it_works_in_chunks_with_a_fixed_number_of_queries_each(team, by_email):
    def old_events(count):
        events = [emit_and_route(CRITICAL, team, datasource_name=f"db{n}") for n in range(count)]
        for event in events:
            sent(event)
        age(91, events=events)
        return events

    def queries(count) -> int:
        old_events(count)
        with CaptureQueriesContext(connection) as captured:
            result = retention_purge(days=90, chunk_size=50)
        assert result.deleted["events"] == count and not Event.objects.exists()
        return len(captured)

    assert queries(2) == queries(20)

    old_events(7)
    result = retention_purge(days=90, chunk_size=3)  # three chunks
    assert result.deleted["events"] == 7 and not Event.objects.exists()
    assert result.deleted["attempts"] == 14


def test_zero_days_keeps_everything_and_a_negative_window_is_refused(team, by_email):
    event = emit_and_route(CRITICAL, team, datasource_name="kept")
    sent(event)
    age(10_000, events=[event])

    out = StringIO()
    call_command("retention_purge", "--days", "0", stdout=out)
    assert "Retention is off" in out.getvalue()
    assert left(event) == (1, 2, 2)

    with pytest.raises(CommandError, match="retention days must be 0 .* or more, not -1"):
        call_command("retention_purge", "--days", "-1")
    assert left(event) == (1, 2, 2)


def test_the_command_says_what_it_deleted(team, by_email, settings):
    settings.DATAFI_RETENTION_DAYS = 30
    event = emit_and_route(CRITICAL, team, datasource_name="old")
    sent(event)
    age(31, events=[event])

    out = StringIO()
    call_command("retention_purge", stdout=out)

    assert "1 events, 0 digests, 2 notifications, 2 deliveries, 2 attempts" in out.getvalue()
    assert left(event) == (0, 0, 0)


def test_beat_runs_it_hourly_on_the_batched_lane(db):
    call_command("sync_schedule", stdout=StringIO())
    task = PeriodicTask.objects.select_related("interval").get(task=control_plane.RETENTION_PURGE)
    assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.HOURS)
    assert task.enabled
    app.loader.import_default_modules()
    assert control_plane.RETENTION_PURGE in app.tasks
    assert app.amqp.router.route({}, control_plane.RETENTION_PURGE)["queue"].name == "digests"
