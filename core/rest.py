"""The one error family, as REST answers it (``core.admin`` is the same for the admin)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import renderers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError, from_validation_error


def exception_handler(exc, context):
    """DRF's handler, plus the application's refusals (``core.errors``): a 400 is
    ``{field: [message]}`` like DRF's own validation; 404, 409, 429 and 503 are
    ``{"detail", "code"}`` (and ``field`` when one is named; a 429 has ``Retry-After``).

    Services raise ``ApplicationError`` (a model's validation through
    ``core.errors.full_clean``); views don't catch them. A Django ``ValidationError`` that
    still reaches a view is answered the same way.
    """
    if isinstance(exc, DjangoValidationError):
        exc = from_validation_error(exc)
    if isinstance(exc, ApplicationError):
        if exc.status_code == 400:
            exc = ValidationError(exc.as_data())
        else:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return Response(exc.as_data(), status=exc.status_code, headers=headers)
    return drf_exception_handler(exc, context)


def not_found(request, exception):
    """Django's 404 (``handler404``): under ``/api/`` as the API answers one, JSON
    ``{"detail": ...}``, e.g. for an id that is not a number; elsewhere the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """Django's 500 (``handler500``): JSON ``{"detail": ...}`` under ``/api/``."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API without what the Content-Security-Policy refuses: the inline
    style element of pygments' code colors, and the "Extra Actions" menu, which DRF's
    template places with a style attribute (its links are the endpoints the README lists)."""

    def get_context(self, data, accepted_media_type, renderer_context):
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["code_style"] = None
        return context

    def get_extra_actions(self, view, status_code):
        return None
