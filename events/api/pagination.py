"""Cursor pagination for every list of the API, with a cursor it cannot use a 400.

DRF's ``CursorPagination`` answers a cursor that does not decode with a 404, and puts the
position of one that does decode straight into a filter, so a forged ``p=abc`` against an
integer ordering is a 500. Every cursor-paginated list subclasses the class below instead.
"""

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

INVALID_CURSOR = ("Not a cursor this list gave out: follow the next or previous link of "
                  "an earlier page, or leave cursor out for the first page.")


class CursorPagination(pagination.CursorPagination):
    """DRF's cursor pagination; a cursor that is not one this list could have written
    (undecodable, or a position that is not a value of the ordering field in the form
    DRF writes it) is a 400 ``{"cursor": [...]}``, and nothing is queried with it."""

    invalid_cursor_message = INVALID_CURSOR

    def get_page_size(self, request):
        """``page_size`` when given: a positive integer (more than ``max_page_size`` gives
        that many), else a 400 naming it; DRF would quietly use the default instead."""
        text = request.query_params.get(self.page_size_query_param or "", "")
        if not (self.page_size_query_param and text):
            return self.page_size
        if not (text.isascii() and text.isdigit() and text.strip("0")):
            raise ValidationError({self.page_size_query_param: [
                f"A page size is a whole number from 1 (at most {self.max_page_size} are "
                "given)."]})
        size = int(text) if len(text) <= 18 else None  # longer: more than any maximum
        return min(size or self.max_page_size, self.max_page_size or size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset  # decode_cursor checks the position against its model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid() from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        """Raise the 400 unless ``position`` is a value of the first ordering field, written
        as DRF writes one (``str`` of the value), within the column's range."""
        queryset = self._queryset
        name = self.ordering[0].lstrip("-")
        meta = queryset.model._meta
        try:
            field = meta.pk if name == "pk" else meta.get_field(name)
        except FieldDoesNotExist:  # an annotation: nothing to check it against
            return
        try:
            value = field.to_python(position)
            if value is None or str(value) != position:
                raise self._invalid()
            field.run_validators(value)  # an integer column's range
            field.get_db_prep_value(value, connections[queryset.db], prepared=False)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise self._invalid() from None

    def _invalid(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
