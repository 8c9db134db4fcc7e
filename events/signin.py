"""A limit on password guessing, shared by every way to sign in.

The token endpoint (``POST /api/auth/token/``), the app's sign-in page and the admin's
count each attempt here before the password is checked: at most
``DATAFI_SIGNIN_THROTTLE_RATE`` failed attempts per client address and, separately, per
username, in the shared cache, so the limit holds across web processes and against a guess
spread over many addresses. An attempt counts when it is made (so parallel guesses cannot
slip past the limit) and a successful one is given back: only failures use it up. Over the
limit an attempt is refused without checking its password, right password or not.

Counts are kept in fixed windows of the rate's period, one per counter, each starting at
an offset derived from the counter (so not every counter resets at once). While the cache
is unreachable nothing is counted or refused (logged): an outage of the cache must not lock
everybody out.
"""

import hashlib
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

from events.exceptions import SigninThrottled

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

#: Seconds since the epoch: the windows' clock (tests move it instead of waiting).
clock = time.time


@dataclass(frozen=True)
class SigninAttempt:
    """An attempt that ``signin_attempt_check`` let through, and where it was counted."""

    keys: tuple[str, ...]  # empty while the cache is unreachable


def signin_rate() -> tuple[int, int]:
    """``DATAFI_SIGNIN_THROTTLE_RATE`` as (failed attempts, period in seconds); DRF's rate
    syntax ``N/s``, ``N/min``, ``N/hour``, ``N/day``."""
    rate = settings.DATAFI_SIGNIN_THROTTLE_RATE
    number, _, period = rate.partition("/")
    try:
        limit, seconds = int(number), PERIODS[period[:1]]
    except (ValueError, KeyError):
        raise ImproperlyConfigured(
            f"DATAFI_SIGNIN_THROTTLE_RATE={rate!r}: expected N/s, N/min, N/hour or N/day"
        ) from None
    if limit < 1:
        raise ImproperlyConfigured(f"DATAFI_SIGNIN_THROTTLE_RATE={rate!r}: N must be at least 1")
    return limit, seconds


def signin_client_address(request) -> str:
    """The client's address as the API's throttles see it: ``REMOTE_ADDR``, or with
    ``DATAFI_NUM_PROXIES`` proxies in front the address the outermost of them appended to
    ``X-Forwarded-For`` (a client cannot pick its own)."""
    return BaseThrottle().get_ident(request) or ""


def signin_attempt_check(*, request, username: str) -> SigninAttempt:
    """Count one attempt to sign in as ``username`` from ``request``'s client address.

    Raises ``SigninThrottled`` (with the seconds until both windows allow again) when the
    address or the username is over its limit: the caller must then refuse the attempt
    without checking the password. Call before checking it, and settle the attempt with
    ``signin_attempt_record`` after.
    """
    limit, period = signin_rate()
    now = clock()
    counted, wait = [], 0
    for key, window_end in _counters(request, username, period=period, now=now):
        timeout = math.ceil(window_end - now) + 1
        try:
            cache.add(key, 0, timeout)
            count = cache.incr(key)
            cache.touch(key, timeout)  # a file cache's incr() resets the expiry
        except Exception as exc:  # the cache's failure, whatever its client raises
            logger.warning("sign-in limit skipped, the cache is unreachable: %r", exc)
            return SigninAttempt(keys=())
        counted.append(key)
        if count > limit:
            wait = max(wait, math.ceil(window_end - now))
    if wait:
        raise SigninThrottled(retry_after=wait)
    return SigninAttempt(keys=tuple(counted))


def signin_attempt_record(*, attempt: SigninAttempt, succeeded: bool) -> None:
    """Settle ``attempt``: a successful one is given back, a failed one stays counted."""
    if not succeeded:
        return
    for key in attempt.keys:
        try:
            cache.decr(key)
        except ValueError:  # its window ended meanwhile
            pass
        except Exception as exc:
            logger.warning("sign-in limit not updated, the cache is unreachable: %r", exc)
            return


@contextmanager
def signin_attempt(*, request, username: str) -> Iterator[None]:
    """``signin_attempt_check`` on entry (raises ``SigninThrottled`` over the limit); the
    block checks the password and raises when it is wrong. An attempt whose block finishes
    without raising is given back."""
    attempt = signin_attempt_check(request=request, username=username)
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        signin_attempt_record(attempt=attempt, succeeded=succeeded)


def _counters(request, username: str, *, period: int, now: float):
    """(cache key, end of its current window) for the client address and the username."""
    identities = {
        "address": signin_client_address(request),
        "username": username.strip().casefold(),  # Alice and alice share one budget
    }
    for kind, identity in identities.items():
        digest = hashlib.sha256(f"{kind}:{identity}".encode("utf-8", "surrogatepass"))
        offset = int(digest.hexdigest()[:8], 16) % period
        window_start = math.floor((now - offset) / period) * period + offset
        yield f"signin:{kind}:{digest.hexdigest()[:32]}:{window_start}", window_start + period
