"""REST framework glue shared by every app's API."""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import renderers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from events.exceptions import ApplicationError


def exception_handler(exc, context):
    """DRF's handler, plus: a service's refusal is a 400 ``{field: [message]}``
    (or the error's own ``status_code``, e.g. 503 when the broker does not answer, 429 with
    ``Retry-After`` after too many sign-in attempts).

    Services raise ``ApplicationError`` (or Django's ``ValidationError`` from a model's
    ``full_clean``); views don't catch them.
    """
    if isinstance(exc, ApplicationError):
        if exc.status_code != 400:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return Response(exc.as_data(), status=exc.status_code, headers=headers)
        exc = ValidationError(exc.as_data())
    elif isinstance(exc, DjangoValidationError):
        exc = ValidationError(_django_error_data(exc))
    return drf_exception_handler(exc, context)


def _django_error_data(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {
            api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field: messages
            for field, messages in exc.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}


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
