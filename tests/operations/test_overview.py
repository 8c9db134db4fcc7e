"""The Overview's hourly rollups, and the page: the same handful of queries whatever the
size of the log; charts (SVG) for staff with the view permission only."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from channels_app.services.webhooks import webhook_endpoint_save
from events import emit
from events.models import Event
from notifications.models import Delivery, Notification
from notifications.services.digests import digest_flush
from operations.models import HourlyRollup
from operations.rollups import LATENCY_BOUNDS, hour_of, overview_rollup, quantile
from tests.support import emit_and_route

Kind = HourlyRollup.Kind


def figures(kind, **filters):
    return {(row.key, row.outcome): row.value
            for row in HourlyRollup.objects.filter(kind=kind, **filters)}


@pytest.fixture
def two_hours_of_traffic(live_db, make_workspace, settings):
    """An hour ago: 2 critical events to 3 members (one email delivered 30 s after emit,
    one failed, one waiting); now: a medium event in a digest. One failing endpoint."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    workspace = make_workspace(members=3)
    now = timezone.now()
    earlier = now - timedelta(hours=1)
    old = [emit_and_route("data_source.connection_lost", workspace, datasource_name=f"db{i}")
           for i in range(2)]
    Event.objects.filter(pk__in=[e.pk for e in old]).update(created_at=earlier)
    Notification.objects.filter(event__in=old).update(created_at=earlier + timedelta(seconds=2))
    emails = list(Delivery.objects.filter(event__in=old, channel="email").order_by("pk"))
    Delivery.objects.filter(pk=emails[0].pk).update(
        status="delivered", delivered_at=earlier + timedelta(seconds=30))
    Delivery.objects.filter(pk=emails[1].pk).update(status="failed")
    emit_and_route("query.long_running_query", workspace, query_name="Nightly")
    digest_flush(bucket="5m")
    endpoint = webhook_endpoint_save(values={"name": "ops", "url": "http://127.0.0.1:9/hook"})
    endpoint.consecutive_failures = 2
    endpoint.save()
    return now, earlier


def test_a_rollup_counts_each_hour_by_priority_channel_and_outcome(two_hours_of_traffic):
    now, earlier = two_hours_of_traffic

    overview_rollup(now=now)

    before, current = hour_of(earlier), hour_of(now)
    assert figures(Kind.EVENTS, hour=before)[("critical", "")] == 2
    assert figures(Kind.EVENTS, hour=current)[("medium", "")] == 1
    assert figures(Kind.EVENTS, hour=current)[("critical", "")] == 0  # zeros are kept
    deliveries = figures(Kind.DELIVERIES, hour=before)
    assert deliveries[("in_app", "delivered")] == 6
    assert deliveries[("email", "delivered")] == 1
    assert deliveries[("email", "failed")] == 1
    assert deliveries[("email", "waiting")] == 4
    assert figures(Kind.DELIVERIES, hour=current) == {("in_app", "delivered"): 3}  # digests
    email = HourlyRollup.objects.get(kind=Kind.LATENCY, hour=before, key="email")
    assert email.value == 1 and email.histogram[LATENCY_BOUNDS.index(30)] == 1
    in_app = HourlyRollup.objects.get(kind=Kind.LATENCY, hour=before, key="in_app")
    assert in_app.histogram[LATENCY_BOUNDS.index(2.5)] == 6
    assert figures(Kind.WEBHOOKS, hour=current)[("failing", "")] == 1
    assert figures(Kind.DIGEST_ITEMS, hour=current)[("5m", "")] == 0


def test_a_rollup_is_idempotent_and_keeps_the_most_backlog_of_the_hour(live_db, make_workspace):
    workspace = make_workspace(members=2)
    with transaction.atomic():  # seen pending (no worker can route it before the commit)
        emit("query.long_running_query", workspace=workspace)
        overview_rollup()
    rows = HourlyRollup.objects.count()
    Event.objects.update(status="routed")
    result = overview_rollup()

    assert result.rows == 4 * 5  # the settling hours and this one, 5 priorities each
    assert HourlyRollup.objects.count() == rows
    assert figures(Kind.OUTBOX)[("medium", "")] == 1  # the most seen this hour
    assert figures(Kind.EVENTS, hour=hour_of(timezone.now()))[("medium", "")] == 1


def test_a_rollup_fills_the_hours_it_missed_up_to_a_week(live_db):
    now = timezone.now()
    first = overview_rollup(now=now - timedelta(days=10))
    later = overview_rollup(now=now)

    assert first.first_hour == hour_of(now - timedelta(days=17))
    assert later.first_hour == hour_of(now) - timedelta(days=7)
    assert HourlyRollup.objects.filter(kind=Kind.EVENTS, key="info").count() == 7 * 24 + 1


def test_quantiles_interpolate_within_a_bucket():
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    counts[LATENCY_BOUNDS.index(1)] = 98  # (0.5 s, 1 s]
    counts[-1] = 2  # above the last bound

    assert quantile(counts, 0.5) == pytest.approx(0.5 + 0.5 * 50 / 98)
    assert quantile(counts, 0.99) == LATENCY_BOUNDS[-1]
    assert quantile([0] * len(counts), 0.5) is None


def test_the_overview_draws_its_charts_in_a_few_queries_whatever_the_volume(
        two_hours_of_traffic, make_user, client, django_assert_max_num_queries):
    now, _ = two_hours_of_traffic
    overview_rollup(now=now)
    client.force_login(make_user("root", superuser=True))
    for range_name in ("24h", "7d"):
        with django_assert_max_num_queries(12):  # session, user, rollups, the backlog now
            response = client.get(f"/admin/operations/overview/?range={range_name}")
        page = response.content.decode()
        assert response.status_code == 200
        assert page.count('<svg class="chart" role="img"') == 10
        assert "Events emitted per hour, by priority" in page
        assert "Email: emit to delivered, p50 and p99 per hour" in page
        assert "style=" not in page.split('id="overview"')[1]  # the CSP allows none


def test_the_overview_needs_its_view_permission(live_db, make_user, client):
    staff = make_user("ops", staff=True)
    client.force_login(staff)
    assert client.get("/admin/operations/overview/").status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="view_overview"))
    assert client.get("/admin/operations/overview/").status_code == 200
    assert "Overview" in client.get("/admin/").content.decode()
