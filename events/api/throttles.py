import logging

from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class TokenThrottle(ScopedRateThrottle):
    """``DATAFI_TOKEN_THROTTLE_RATE`` token requests per client address (scope auth-token).

    The counters live in the shared cache, so the limit holds across web processes. If
    the cache is unreachable the request is let through (and logged): an outage of the
    cache must not lock everybody out of signing in.
    """

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache's failure, whatever its client raises
            logger.warning("token throttle skipped, the cache is unreachable: %r", exc)
            return True
