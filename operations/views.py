"""/healthz, /readyz and /metrics: for load balancers, Kubernetes probes and Prometheus.

Served by ``operations.middleware.ProbeMiddleware`` ahead of the other middleware (no host
check, no HTTPS redirect, no session): a probe calls a pod by its address over plain HTTP.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from .exposition import metrics_text
from .health import readiness

logger = logging.getLogger(__name__)


def healthz(request):
    """Liveness: the process answers. Touches nothing."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: 200 when the database, broker and cache answer and beat's heartbeat is
    fresh; else 503 naming what fails (the reasons are logged, never shown here)."""
    failing = [check for check in readiness() if not check.ok]
    for check in failing:
        logger.warning("not ready: %s: %s", check.name, check.detail)
    if failing:
        response = JsonResponse({"status": "unavailable",
                                 "failing": [check.name for check in failing]}, status=503)
        response._has_been_logged = True  # logged above, with the reasons: not again as an error
        return response
    return JsonResponse({"status": "ok"})


def metrics(request):
    """Prometheus text. With ``DATAFI_METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <token>``; without, only for a client on this host that did not
    come through a proxy."""
    token = settings.DATAFI_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("A valid Authorization: Bearer token is needed.\n",
                                    status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _direct_loopback(request):
        return HttpResponse("Metrics are served to this host only; set DATAFI_METRICS_TOKEN "
                            "to scrape from elsewhere.\n", status=403,
                            content_type="text/plain")
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def _direct_loopback(request) -> bool:
    """A client on this host, not a proxy forwarding someone else (which on the same host
    would look local too: it adds X-Forwarded-For, or Forwarded)."""
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
