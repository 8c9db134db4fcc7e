import itertools

from django.db import DatabaseError
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.settings import api_settings

from events.models import Category, Event, EventType
from events.services.emit import MAX_RECIPIENTS
from events.signin import signin_attempt


class StrictFieldsMixin:
    """Refuse fields the serializer does not take: a 400 naming each, never ignored.

    A misspelt field (say "workspace", or "replce") must not silently do something else,
    and neither may a field the write cannot change: a read-only one (``id``,
    ``secret_set``) is refused too, saying so. A form's CSRF token is not a field.
    """

    #: At most this many refused fields are named (the rest are counted).
    NAMED_AT_MOST = 10
    #: Read by the schema (``core.openapi``): such a request is additionalProperties false.
    refuses_unknown_fields = True

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = [name for name, field in self.fields.items() if not field.read_only]
            refused = sorted(set(data.keys()) - set(writable) - {"csrfmiddlewaretoken"})
            if refused:
                raise serializers.ValidationError(self._refusals(refused, writable))
        if isinstance(data, dict) and not isinstance(data, QueryDict):  # JSON: typed values
            mistyped = {name: problem if isinstance(problem, dict) else [problem]
                        for name, value in data.items()
                        if (problem := json_type_problem(self.fields[name], value))}
            if mistyped:
                raise serializers.ValidationError(mistyped)
        return super().to_internal_value(data)

    def _refusals(self, refused: list[str], writable: list[str]) -> dict:
        known = ", ".join(writable) or "none"
        errors = {
            _field_name(name): [f"read-only field; writable: {known}" if name in self.fields
                                else f"unknown field; known: {known}"]
            for name in refused[:self.NAMED_AT_MOST]
        }
        if len(refused) > self.NAMED_AT_MOST:
            errors[api_settings.NON_FIELD_ERRORS_KEY] = [
                f"{len(refused)} fields refused in all; the first {self.NAMED_AT_MOST} are "
                "named"]
        return errors


#: A field's JSON type, where DRF would convert another one (1 to "1", "1" to 1, 0 to False).
_JSON_TYPES = (
    (serializers.BooleanField, bool, "true or false"),
    (serializers.IntegerField, int, "an integer"),
    (serializers.CharField, str, "a string"),
    (serializers.ChoiceField, str, "a string"),
    (serializers.DateTimeField, str, "a string"),
    (serializers.SlugRelatedField, str, "a string"),
)


def json_type_problem(field, value) -> str | dict | None:
    """Why ``value`` (from a JSON body) is not of ``field``'s JSON type, or None: the API
    takes exactly what its schema says, never a number for a string or the reverse. For a
    list, the first few items' problems by index (as DRF names a list's items)."""
    if value is None:
        return None  # the field says whether it may be null
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        if field.max_length is not None and len(value) > field.max_length:
            return None  # refused for its length first, unread
        problems = ((str(i), json_type_problem(field.child, item)) for i, item in enumerate(value))
        named = dict(itertools.islice(((i, [p]) for i, p in problems if p),
                                      BoundedListField.ITEM_ERRORS_SHOWN))
        return named or None
    for kind, python_type, name in _JSON_TYPES:
        if isinstance(field, kind):
            if isinstance(field, serializers.ChoiceField) and not all(
                    isinstance(choice, str) for choice in field.choices):
                return None
            if isinstance(value, bool) and python_type is not bool or not isinstance(
                    value, python_type):
                return f"Must be {name}, not {_json_name(value)}."
            return None
    return None


def _json_name(value) -> str:
    for python_type, name in ((bool, "true or false"), (int, "a number"), (float, "a number"),
                              (str, "a string"), (list, "a list"), (dict, "an object")):
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _field_name(name, limit: int = 80) -> str:
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1] + "\u2026"


class NoFieldsSerializer(StrictFieldsMixin, serializers.Serializer):
    """The body of a write that takes no fields (mark read, retry, send a test): any field
    sent is refused, as on every other write."""


def refuse_fields(data) -> None:
    """A 400 naming each field in ``data``, for a write that takes none."""
    NoFieldsSerializer(data=data).is_valid(raise_exception=True)


class BoundedListField(serializers.ListField):
    """A list of at most ``max_length`` items, counted before any item is checked, so a
    long list costs nothing to refuse; an error names the field and never echoes the list
    (of the items' own errors, the first few are given). ``distinct``: the schema says no
    item may be listed twice (whoever checks the items refuses a repeat)."""

    ITEM_ERRORS_SHOWN = 5

    def __init__(self, *, distinct: bool = False, **kwargs):
        self.distinct = distinct
        super().__init__(**kwargs)

    @property
    def openapi(self) -> dict:
        return {"uniqueItems": True} if self.distinct else {}

    def to_internal_value(self, data):
        if (isinstance(data, list) and self.max_length is not None
                and len(data) > self.max_length):
            self.fail("max_length", max_length=self.max_length)
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict) and len(exc.detail) > self.ITEM_ERRORS_SHOWN:
                raise serializers.ValidationError(
                    dict(list(exc.detail.items())[:self.ITEM_ERRORS_SHOWN])) from None
            raise


def listed(queryset, field: str, *, extra: tuple = ()) -> dict:
    """The schema's enum of ``field`` over ``queryset`` (the catalog, read when the schema is
    made), or nothing while there is none: an empty or not yet migrated database (``manage.py
    check --deploy`` makes the schema too). Inline (in ``allOf``), not a named component:
    its values are data, not a fixed choice set."""
    try:
        values = sorted(queryset.values_list(field, flat=True))
    except DatabaseError:
        values = []
    return {"allOf": [{"enum": [*values, *extra]}]} if values else {}


class EventTypeKeyField(serializers.CharField):
    """An event type's key, e.g. ``query.query_failed``; the schema lists the catalog's."""

    @staticmethod
    def openapi() -> dict:
        return listed(EventType.objects.all(), "key")


class WorkspaceIdField(serializers.CharField):
    """A workspace's public id: ``ws_`` then 1 to 37 lower-case letters, digits or ``_``."""

    openapi = {"pattern": "^ws_[a-z0-9_]{1,37}$"}


class CategorySlugField(serializers.CharField):
    """A category's slug, e.g. ``queries``; the schema lists the catalog's."""

    @staticmethod
    def openapi() -> dict:
        return listed(Category.objects.all(), "slug")


class ListedSlugRelatedField(serializers.SlugRelatedField):
    """A slug of a small set the schema lists (the catalog's categories or event types);
    where it may be null, empty is null too (DRF's reading of a related field)."""

    @property
    def openapi(self) -> dict:
        extra = ("", None) if self.allow_null else ()
        return {"type": "string", "minLength": 0,
                **listed(self.get_queryset(), self.slug_field, extra=extra)}


#: A payload value as the schema says it (a component, since it nests): JSON without a NUL
#: character in any text or key. emit() also bounds its size, depth and integers (README
#: "How an event flows"), which a schema cannot say.
PAYLOAD_TEXT = {"type": "string", "pattern": "^[^\\u0000]*$"}
PAYLOAD_VALUE = {"$ref": "#/components/schemas/PayloadValue"}
PAYLOAD_OBJECT = {"type": "object", "propertyNames": PAYLOAD_TEXT,
                  "additionalProperties": PAYLOAD_VALUE}
PAYLOAD_COMPONENTS = {"PayloadValue": {"nullable": True, "anyOf": [
    PAYLOAD_TEXT, {"type": "number"}, {"type": "boolean"},
    {"type": "array", "items": PAYLOAD_VALUE}, PAYLOAD_OBJECT]}}


class PayloadField(serializers.JSONField):
    """A JSON object, passed on as it is: ``emit()`` checks it (depth, text, size) without
    recursion, where DRF's JSONField would re-encode it and fail on deep nesting."""

    openapi = {**PAYLOAD_OBJECT,
               "description": "A JSON object: at most 64 KiB as JSON, 32 levels deep."}
    openapi_components = PAYLOAD_COMPONENTS

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be a JSON object")
        return data


class EmitSerializer(StrictFieldsMixin, serializers.Serializer):
    event_type = EventTypeKeyField()
    workspace_id = WorkspaceIdField(required=False, allow_null=True)
    payload = PayloadField(required=False, default=dict)
    recipients = BoundedListField(
        child=serializers.IntegerField(), required=False, allow_null=True, allow_empty=False,
        max_length=MAX_RECIPIENTS,
        error_messages={"max_length": "at most {max_length} user ids; leave it out to notify "
                                      "the whole workspace"},
        help_text=f"User ids, at most {MAX_RECIPIENTS}: narrows the audience (they must be "
                  "members of the workspace).",
    )
    dedupe_key = serializers.CharField(required=False, allow_null=True, max_length=200)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)


class EventSerializer(serializers.ModelSerializer):
    event_type = serializers.SlugRelatedField(slug_field="key", read_only=True)
    workspace_id = serializers.CharField(source="workspace.public_id", read_only=True,
                                         allow_null=True)

    class Meta:
        model = Event
        fields = ["id", "event_type", "priority", "workspace_id", "payload", "dedupe_key",
                  "occurred_at", "created_at", "status", "last_error"]
        read_only_fields = fields


class SigninTokenSerializer(AuthTokenSerializer):
    """DRF's username and password check, under the sign-in limit (``events.signin``):
    over it ``SigninThrottled`` (a 429 with ``Retry-After``) and the password is not checked."""

    def validate(self, attrs):
        username, password = attrs.get("username"), attrs.get("password")
        if not (username and password):
            return super().validate(attrs)  # refused: nothing to check a password against
        with signin_attempt(request=self.context["request"], username=username):
            return super().validate(attrs)
