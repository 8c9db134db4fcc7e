"""Readiness: does each thing the service needs answer now? Database, broker, cache, beat.

Each check runs in a thread of its own and gets ``DATAFI_READYZ_TIMEOUT_SECONDS``; one that
has not answered by then counts as failing (its thread ends on its own socket timeout), so
a hung dependency costs a probe that long, never more. Checks touch nothing they could
break: a ``SELECT 1``, a broker connection, a cache key of their own, the heartbeat row.
"""

import threading
import time
import uuid
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .models import BeatHeartbeat


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} answers"


def check_broker() -> str:
    """Connect to the broker (Redis answers a PING, RabbitMQ the AMQP handshake)."""
    with current_app.connection_for_write() as conn:
        conn.connect()
        conn.default_channel  # noqa: B018 (opening a channel is the round trip)
        return f"{conn.transport.driver_type} answers"


def check_cache() -> str:
    key, token = "operations:readyz", uuid.uuid4().hex
    cache.set(key, token, timeout=30)
    if cache.get(key) != token:
        raise RuntimeError("the cache did not keep a value")
    return "the cache keeps a value"


def heartbeat_age() -> float | None:
    """Seconds since beat's heartbeat task last ran; None if it never did."""
    beat_at = BeatHeartbeat.objects.filter(pk=BeatHeartbeat.SINGLETON).values_list(
        "beat_at", flat=True).first()
    return None if beat_at is None else max(0.0, (timezone.now() - beat_at).total_seconds())


def check_beat() -> str:
    age = heartbeat_age()
    limit = settings.DATAFI_BEAT_HEARTBEAT_MAX_AGE_SECONDS
    if age is None:
        raise RuntimeError("no heartbeat yet: is beat running (and the urgent worker)?")
    if age > limit:
        raise RuntimeError(f"last heartbeat {age:.0f} s ago (more than {limit:g} s): is beat "
                           "running (and the urgent worker)?")
    return f"last heartbeat {age:.0f} s ago"


CHECKS = {"database": check_database, "broker": check_broker, "cache": check_cache,
          "beat": check_beat}


def readiness(*, timeout: float | None = None) -> list[Check]:
    """Every check of ``CHECKS``, run at once, each within ``timeout`` seconds."""
    timeout = settings.DATAFI_READYZ_TIMEOUT_SECONDS if timeout is None else timeout
    results: dict[str, Check] = {}
    threads = [threading.Thread(target=_run, args=(name, check, results), daemon=True,
                                name=f"readyz-{name}")
               for name, check in CHECKS.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [results.get(name) or Check(name, False, f"no answer within {timeout:g} s")
            for name in CHECKS]


def _run(name: str, check, results: dict) -> None:
    try:
        results[name] = Check(name, True, check())
    except Exception as exc:  # any failure is the answer: not ready, and why
        results[name] = Check(name, False, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        connection.close()  # this thread's own connection, if the check opened one
