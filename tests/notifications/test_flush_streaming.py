"""A flush that streams: set-based claim, in-app digests sent in bounded chunks."""

import weakref

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery, Digest, Notification
from notifications.services.digests import digest_flush
from tests.support import emit_and_route

MEDIUM = "query.long_running_query"
PER_DIGEST = 5  # medium events per member: each member's digest lists this many items


def pending_digests(make_workspace, members: int):
    workspace = make_workspace(f"ws{members}", members=members)
    for n in range(PER_DIGEST):
        emit_and_route(MEDIUM, workspace, query_name=f"q{n}")
    return workspace


def flush_queries(make_workspace, members: int) -> int:
    pending_digests(make_workspace, members)
    with CaptureQueriesContext(connection) as queries:
        result = digest_flush(bucket="5m")
    assert (result.claimed_items, result.digests_sent) == (members * PER_DIGEST, members)
    Notification.objects.all().delete()
    Delivery.objects.all().delete()
    Digest.objects.all().delete()
    return len(queries)


def test_flush_costs_a_constant_number_of_queries_per_chunk(postgres, make_workspace, settings):
    settings.DATAFI_FLUSH_CHUNK_ITEMS = 2 * PER_DIGEST  # two digests per chunk
    two, four, six = (flush_queries(make_workspace, members) for members in (4, 8, 12))

    per_chunk = (four - two) / 2  # 2 more chunks
    assert six - four == four - two  # linear in chunks...
    assert per_chunk <= 10  # ...a handful per chunk, not one per item or per digest
    assert two - 2 * per_chunk <= 10  # and a few for the claim, whatever the number of items


@pytest.fixture
def live_deliveries():
    """The peak number of Delivery instances alive at any query of the block."""
    alive = []
    peak = {"deliveries": 0}

    def track(sender, instance, **kwargs):
        alive.append(weakref.ref(instance))

    def sample(execute, sql, params, many, context):
        alive[:] = [ref for ref in alive if ref() is not None]
        peak["deliveries"] = max(peak["deliveries"], len(alive))
        return execute(sql, params, many, context)

    post_init.connect(track, sender=Delivery)
    try:
        with connection.execute_wrapper(sample):
            yield peak
    finally:
        post_init.disconnect(track, sender=Delivery)


def test_flush_holds_one_chunk_at_most(make_workspace, settings, live_deliveries):
    settings.DATAFI_FLUSH_CHUNK_ITEMS = 2 * PER_DIGEST
    workspace = pending_digests(make_workspace, members=9)

    result = digest_flush(bucket="5m")

    assert (result.claimed_items, result.digests_sent) == (9 * PER_DIGEST, 9)
    assert live_deliveries["deliveries"] <= 2 * PER_DIGEST
    for member in workspace.people:  # each member: one digest listing every event once
        [notification] = Notification.objects.filter(user=member)
        assert len(notification.items) == PER_DIGEST
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_digest_larger_than_a_chunk_is_sent_whole(make_workspace, settings):
    settings.DATAFI_FLUSH_CHUNK_ITEMS = 2
    workspace = pending_digests(make_workspace, members=3)

    assert digest_flush(bucket="5m").digests_sent == 3
    for member in workspace.people:
        [notification] = Notification.objects.filter(user=member)
        assert len(notification.items) == PER_DIGEST


def test_a_flush_loads_each_event_once_for_all_the_chunks_listing_it(make_workspace, settings):
    settings.DATAFI_FLUSH_CHUNK_ITEMS = 2 * PER_DIGEST  # 9 members: five chunks, same events
    workspace = pending_digests(make_workspace, members=9)

    with CaptureQueriesContext(connection) as queries:
        result = digest_flush(bucket="5m")

    assert (result.claimed_items, result.digests_sent) == (9 * PER_DIGEST, 9)
    event_loads = [q["sql"] for q in queries.captured_queries
                   if q["sql"].startswith("SELECT") and 'FROM "events_event"' in q["sql"]]
    assert len(event_loads) == 1
    listed = {tuple((item["event_id"], item["title"]) for item in notification.items)
              for notification in Notification.objects.filter(user__in=workspace.people)}
    assert len(listed) == 1  # every member's digest lists the same items, rendered once
    [items] = listed
    assert len(items) == PER_DIGEST and all(title for _, title in items)
