"""The OpenAPI schema (drf-spectacular) tells the whole truth: every answer an operation can
give, and requests described as strictly as they are checked.

Described once here rather than on each view:

- **Errors.** Every operation documents the error family's bodies (``core.errors``,
  ``core.rest``): 400 ``{field: [message]}`` (any operation: a NUL in its query, bad input);
  401 and 403 when it needs a signed-in user; 404 when its path names something. A view
  adds what its services may also refuse with ``@refuses(Conflict, ...)`` on a handler, or
  a ``refusals`` mapping of action (or method) names for inherited ones: 404, 409, 429
  (with ``Retry-After``) or 503, each ``{"detail", "code"}``.
- **Requests.** A serializer that refuses unknown fields (``refuses_unknown_fields``:
  ``events.api.serializers.StrictFieldsMixin``) is ``additionalProperties: false``, and
  its read-only fields are not part of a request (``COMPONENT_SPLIT_REQUEST``). Text takes
  no NUL character, and a field that may not be blank has a character that is not space.
  A validator describes itself: ``refused_characters`` (a regular expression's character
  class, e.g. ``events.validators.validate_single_line``) or ``openapi`` (a schema
  fragment, or a function returning one); so may a field class (with the components its
  fragment refers to, ``openapi_components``) or a serializer (e.g. exactly one of some
  fields; ``openapi_patch`` for a PATCH, e.g. at most one of them). Bodies are JSON,
  unless a view names its own parsers.
"""

from collections.abc import Callable

from django.core.validators import EmailValidator, RegexValidator, URLValidator
from drf_spectacular import openapi
from drf_spectacular.plumbing import (
    ResolvedComponent,
    force_instance,
    is_basic_serializer,
    is_patched_serializer,
)
from rest_framework import permissions, serializers

from core.errors import ApplicationError

#: drf-spectacular's alternative for a text that may be blank, next to its shape.
BLANK = {"type": "string", "maxLength": 0}

#: The API refuses a NUL character in any text (a regular expression's character class).
NUL = "\\u0000"

DETAIL = {"type": "string", "description": "What was refused, in a sentence."}
CODE = {"type": "string", "description": "A stable code, e.g. not_found, not_retryable."}
FIELD = {"type": "string", "description": "The input the refusal is about, when one is."}

#: The error family's bodies, as components of the schema.
COMPONENTS = {
    "ValidationError": {
        "type": "object",
        "description": "Bad input, nothing written: each refused field (non_field_errors when "
                       "none is) with its messages; a nested field's errors nest the same "
                       "way. A body that does not parse is {\"detail\": \"...\"}.",
        "minProperties": 1,
        "additionalProperties": {"anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object"},
            {"type": "string"},
        ]},
    },
    "Error": {
        "type": "object",
        "description": "A refusal: its message, and from a service a code and the field it "
                       "is about.",
        "properties": {"detail": DETAIL, "code": CODE, "field": FIELD},
        "required": ["detail"],
        "additionalProperties": False,
    },
    "ServiceError": {
        "type": "object",
        "description": "A service's refusal: its message, code and, when one is named, the "
                       "field it is about.",
        "properties": {"detail": DETAIL, "code": CODE, "field": FIELD},
        "required": ["detail", "code"],
        "additionalProperties": False,
    },
}

DESCRIPTIONS = {
    400: "Bad input (named per field); nothing was written.",
    401: "Not signed in: no credentials, or a token that is not valid.",
    403: "Signed in without the permission this needs (the message names it).",
    404: "Not found, or not yours to see.",
    409: "Does not fit the current state (the code says why).",
    429: "Asked too often: try again after Retry-After seconds.",
    503: "A service this needs does not answer now; nothing was done.",
}
NOT_MODIFIED = ("Not modified: If-None-Match names the current ETag; no body (the ETag "
                "header is sent again).")
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True,
                               "description": "Seconds to wait before asking again."}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": False,
                                         "description": "How to authenticate (Token)."}}


#: A value that names something (an empty text is the same as null).
NAMED = {"type": "string", "minLength": 1}


def exactly_one_of(*names: str) -> dict:
    """The schema of a body that gives exactly one of the text fields ``names`` (the others
    absent, null or empty)."""
    return {"oneOf": [
        {"required": [name], "properties": {
            name: NAMED, **{other: {"not": NAMED} for other in names if other != name}}}
        for name in names]}


def at_most_one_of(*names: str) -> dict:
    """The schema of a PATCH that names at most one of the text fields ``names``."""
    return {"not": {"anyOf": [
        {"required": [one, other], "properties": {one: NAMED, other: NAMED}}
        for index, one in enumerate(names) for other in names[index + 1:]]}}


def refuses(*errors: type[ApplicationError]) -> Callable:
    """Mark a view method (or action) as answering these kinds of ``ApplicationError`` too,
    beyond the ones every operation documents: its services may raise them."""
    def mark(method):
        method.refuses = tuple(getattr(method, "refuses", ())) + errors
        return method
    return mark


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with the error family and strict requests (see the module)."""

    # --- answers ------------------------------------------------------------------------

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction == "response":
            if self._is_conditional():
                responses.setdefault("304", {"description": NOT_MODIFIED})
            for status, response in self._error_responses().items():
                responses.setdefault(str(status), response)
        return dict(sorted(responses.items()))

    def _is_conditional(self) -> bool:
        """Whether the operation takes If-None-Match (and so may answer 304)."""
        return any(getattr(p, "name", None) == "If-None-Match"
                   for p in self.get_override_parameters())

    def _error_responses(self) -> dict[int, dict]:
        errors = {400: self._error(400, "ValidationError")}
        if self._needs_user():
            errors[401] = self._error(401, "Error", headers=WWW_AUTHENTICATE)
            errors[403] = self._error(403, "Error")
        if "{" in self.path:
            errors[404] = self._error(404, "Error")
        for kind in self._refusals():
            status = kind.status_code
            if status == 400:
                continue
            errors[status] = self._error(status, "Error" if status == 404 else "ServiceError",
                                         headers=RETRY_AFTER if status == 429 else None)
        return errors

    def _error(self, status: int, name: str, *, headers: dict | None = None) -> dict:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA,
                                      object=f"core.openapi.{name}", schema=COMPONENTS[name])
        self.registry.register_on_missing(component)
        response = {"description": DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": component.ref}}}
        if headers:
            response["headers"] = headers
        return response

    def _needs_user(self) -> bool:
        allowed = [type(p) for p in self.view.get_permissions()]
        return permissions.AllowAny not in allowed

    def _refusals(self) -> tuple[type[ApplicationError], ...]:
        name = getattr(self.view, "action", None) or self.method.lower()
        handler = getattr(self.view, name, None)
        return (*getattr(handler, "refuses", ()), *getattr(self.view, "refusals", {}).get(name, ()))

    # --- requests -----------------------------------------------------------------------

    def _process_override_parameters(self, direction="request"):
        """Query parameters from a filter serializer: a blank value of one that is not
        required is read as not given (DRF's reading of a query string), so it may be
        empty."""
        parameters = super()._process_override_parameters(direction)
        for override in self.get_override_parameters():
            if not is_basic_serializer(override):
                continue
            for name, field in force_instance(override).fields.items():
                parameter = parameters.get((name, "query"))
                if parameter and not field.required:
                    parameter["allowEmptyValue"] = True
                    parameter["schema"].pop("minLength", None)
        return parameters

    def map_parsers(self):
        """JSON, unless the view names its own parsers (a file upload, the token form)."""
        own = getattr(type(self.view), "parser_classes", None)
        if own is None or list(own) == list(_default_parsers()):
            return ["application/json"]
        return super().map_parsers()

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":
            if getattr(serializer, "refuses_unknown_fields", False):
                schema["additionalProperties"] = False
            if not is_patched_serializer(serializer, direction):  # a PATCH gives what it changes
                schema.update(_fragment(serializer))
            else:
                schema.update(_fragment(serializer, "openapi_patch"))
        return schema

    def _get_request_body(self, direction="request"):
        """A body that must say something (a required field, one of several) is required."""
        body = super()._get_request_body(direction)
        if not body or self.method == "PATCH":
            return body
        serializer = force_instance(self.get_request_serializer())
        if is_basic_serializer(serializer) and (
                any(f.required for f in serializer.fields.values())
                or {"oneOf", "anyOf", "minProperties"} & set(_fragment(serializer))):
            body["required"] = True
        return body

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if schema.get("oneOf", [None])[-1] == BLANK:  # "" may match the other one too
            schema["anyOf"] = schema.pop("oneOf")

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or schema is None or "$ref" in schema:
            return schema
        validators = getattr(field, "validators", [])
        if schema.get("type") == "string" and isinstance(field, serializers.CharField) \
                and not _has_shape(schema, validators):
            own = "".join(getattr(v, "refused_characters", "") for v in validators)
            refused = own if own.startswith(NUL) else NUL + own
            schema["pattern"] = (f"^[^{refused}]*$" if field.allow_blank
                                 else f"^[^{refused}]*[^\\s{refused}][^{refused}]*$")
        if isinstance(field, serializers.ListField) and not field.allow_empty:
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        if isinstance(field, serializers.DictField) and not field.allow_empty:
            schema["minProperties"] = max(schema.get("minProperties", 0), 1)
        for source in (field, *validators):
            schema.update(_fragment(source))
        for name, component in getattr(field, "openapi_components", {}).items():
            self.registry.register_on_missing(ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, object=name, schema=component))
        return schema


def _fragment(source, attribute: str = "openapi") -> dict:
    """What ``source`` (a field, a serializer or a validator) says of itself in the schema:
    its ``openapi`` attribute (a serializer's ``openapi_patch`` for a PATCH), a schema
    fragment or a function returning one."""
    fragment = getattr(source, attribute, None)
    if callable(fragment):
        fragment = fragment()
    return dict(fragment or {})


def _has_shape(schema: dict, validators) -> bool:
    """Whether the text's shape is said already (a pattern, a format, choices), or will be by
    drf-spectacular from a validator."""
    return any(key in schema for key in ("pattern", "format", "enum", "oneOf", "anyOf")) or any(
        isinstance(v, (RegexValidator, EmailValidator, URLValidator)) for v in validators)


def _default_parsers() -> list:
    from rest_framework.settings import api_settings
    return api_settings.DEFAULT_PARSER_CLASSES
