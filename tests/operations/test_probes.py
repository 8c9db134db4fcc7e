"""/healthz, /readyz and /metrics in-process: answers, timeouts, who may scrape.

With real processes (gunicorn, workers, beat, a broker killed): test_processes.py.
"""

import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from events.catalog import Priority
from operations.services import beat_heartbeat_record
from tests.support import emit_and_route


def samples(response) -> dict[tuple, float]:
    """(name, labels as sorted pairs) -> value of every sample of a /metrics answer."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode())
            for s in family.samples}


def scrape(client, **extra):
    return client.get("/metrics", REMOTE_ADDR="127.0.0.1", **extra)


def test_healthz_answers_any_host_over_plain_http_and_touches_nothing(
        client, db, settings, django_assert_num_queries):
    settings.SECURE_SSL_REDIRECT = True  # DATAFI_HTTPS: everything else is redirected
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.0.3.7:8000")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert client.get("/accounts/login/").status_code == 301


def test_readyz_is_ok_when_everything_answers_and_beat_is_fresh(client, live_db):
    beat_heartbeat_record()

    response = client.get("/readyz", HTTP_HOST="10.0.3.7")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_a_stale_beat_and_says_nothing_more(client, live_db, settings, caplog):
    settings.DATAFI_BEAT_HEARTBEAT_MAX_AGE_SECONDS = 60
    beat_heartbeat_record(now=timezone.now() - timedelta(seconds=61))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": ["beat"]}
    assert "last heartbeat 61 s ago" in caplog.text  # the reason is logged, not shown


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never answers: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_a_hung_cache_fails_readiness_within_the_timeout(client, live_db, settings,
                                                        silent_port):
    beat_heartbeat_record()
    settings.DATAFI_READYZ_TIMEOUT_SECONDS = 0.5
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{silent_port}/0"}}
    started = time.monotonic()
    response = client.get("/readyz")

    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]


def test_metrics_count_what_was_emitted_and_show_the_backlog(client, live_db, make_workspace):
    workspace = make_workspace(members=3)
    before = samples(scrape(client))

    emit_and_route("data_source.connection_lost", workspace, datasource_name="Warehouse")
    emit_and_route("query.long_running_query", workspace, query_name="Nightly")
    after = samples(scrape(client))

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("datafi_events_emitted_total", event_type="data_source.connection_lost",
                priority=Priority.CRITICAL) == 1
    assert grew("datafi_notifications_total", channel="in_app") == 6
    assert grew("datafi_deliveries_total", channel="in_app", outcome="delivered") == 3
    assert grew("datafi_delivery_latency_seconds_count", channel="in_app") == 3
    assert after[("datafi_digest_pending_items", (("bucket", "5m"), ("channel", "in_app")))] == 3
    assert after[("datafi_outbox_pending", (("priority", "critical"),))] == 0
    assert ("datafi_queue_depth", (("queue", "urgent"),)) in after
    assert after[("datafi_metrics_source_up", (("source", "broker"),))] == 1


def test_metrics_are_for_this_host_only_without_a_token(client, db):
    assert scrape(client).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    # A proxy on this host forwards someone else's request: not local.
    assert scrape(client, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_metrics_ask_for_the_token_when_one_is_set(client, db, settings):
    settings.DATAFI_METRICS_TOKEN = "s3cret-scraper-token"

    missing = scrape(client)
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR="203.0.113.9")
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token",
                       REMOTE_ADDR="203.0.113.9", HTTP_HOST="10.0.3.7")

    assert missing.status_code == wrong.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain; version=")


def test_probes_take_get_only(client, db):
    assert client.post("/healthz").status_code == 405
