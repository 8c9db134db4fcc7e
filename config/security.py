"""What a page may load and do: the Content-Security-Policy and Permissions-Policy headers on
every response, and the endpoint browsers report policy violations to.

Our own small middleware rather than django-csp: the policy is one fixed header (no page
has an inline script or style, so there is no nonce to make per request), and ``SECURE_CSP``
has the shape of Django 6.0's built-in setting, so the upgrade replaces this middleware with
Django's own and keeps the setting.
"""

import json
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger(__name__)

#: A report larger than this is refused unread (a browser's report is a few hundred bytes;
#: a Reporting API batch holds a few of them).
CSP_REPORT_MAX_BYTES = 64 * 1024
#: The report's values are cut to this many characters in the log.
LOGGED_VALUE_CHARS = 300


def build_policy(directives: dict[str, list[str]]) -> str:
    """``{"default-src": ["'self'"], "upgrade-insecure-requests": []}`` as a header value:
    ``default-src 'self'; upgrade-insecure-requests``."""
    return "; ".join(" ".join([name, *values]) for name, values in directives.items())


def security_headers() -> dict[str, str]:
    """The headers every response carries, from ``SECURE_CSP`` and ``PERMISSIONS_POLICY``."""
    return {
        "Content-Security-Policy": build_policy(settings.SECURE_CSP),
        "Permissions-Policy": ", ".join(
            f"{feature}=({' '.join(allowed)})"
            for feature, allowed in settings.PERMISSIONS_POLICY.items()),
    }


class SecurityHeadersMiddleware:
    """Set Content-Security-Policy and Permissions-Policy on every response that has not set
    its own: pages, the admin, /api/docs/, API answers, static
    files (when placed before WhiteNoise) and error pages alike."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.headers = security_headers()

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response


def _logged(value) -> str:
    """A report's value as one short log-safe line (it comes from anyone)."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = "".join(char if char.isprintable() else " " for char in text)
    return text[:LOGGED_VALUE_CHARS]


def _violation(report) -> dict | None:
    """The fields of one report, from either format; None when it is not a CSP violation."""
    if not isinstance(report, dict):
        return None
    if isinstance(report.get("csp-report"), dict):  # report-uri: application/csp-report
        body = report["csp-report"]
        return {
            "document": body.get("document-uri"),
            "directive": body.get("effective-directive") or body.get("violated-directive"),
            "blocked": body.get("blocked-uri"),
            "source": body.get("source-file"),
            "line": body.get("line-number"),
            "sample": body.get("script-sample"),
        }
    if report.get("type") == "csp-violation" and isinstance(report.get("body"), dict):
        body = report["body"]  # report-to: application/reports+json
        return {
            "document": body.get("documentURL") or report.get("url"),
            "directive": body.get("effectiveDirective"),
            "blocked": body.get("blockedURL"),
            "source": body.get("sourceFile"),
            "line": body.get("lineNumber"),
            "sample": body.get("sample"),
        }
    return None


@csrf_exempt  # browsers send reports without a token or a session
@require_POST
def csp_report(request):
    """Log each Content-Security-Policy violation a browser reports, at WARNING.

    Takes both formats: ``report-uri``'s one ``{"csp-report": {...}}`` object (what the
    policy asks for) and the Reporting API's list of ``{"type": "csp-violation", "body":
    {...}}`` (``report-to``, should the policy name it one day). No authentication.
    A body over ``CSP_REPORT_MAX_BYTES`` is a 413, read no further; a body that holds no CSP
    violation is a 400; otherwise 204 with no body.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > CSP_REPORT_MAX_BYTES:
        return HttpResponse("CSP report too large.", status=413, content_type="text/plain")
    body = request.read(CSP_REPORT_MAX_BYTES + 1)
    if len(body) > CSP_REPORT_MAX_BYTES:
        return HttpResponse("CSP report too large.", status=413, content_type="text/plain")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return HttpResponseBadRequest("Not JSON: expected a CSP violation report.")
    violations = [v for v in map(_violation, data if isinstance(data, list) else [data]) if v]
    if not violations:
        return HttpResponseBadRequest("No CSP violation in the report.")
    for violation in violations:
        logger.warning(
            "CSP violation: %s refused %s on %s (source %s, line %s, sample %s)",
            *(_logged(violation[key]) for key in
              ("directive", "blocked", "document", "source", "line", "sample")))
    return HttpResponse(status=204)
