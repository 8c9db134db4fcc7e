from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.settings import api_settings

from events.models import Event
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

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = [name for name, field in self.fields.items() if not field.read_only]
            refused = sorted(set(data.keys()) - set(writable) - {"csrfmiddlewaretoken"})
            if refused:
                raise serializers.ValidationError(self._refusals(refused, writable))
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
    (of the items' own errors, the first few are given)."""

    ITEM_ERRORS_SHOWN = 5

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


class PayloadField(serializers.JSONField):
    """A JSON object, passed on as it is: ``emit()`` checks it (depth, text, size) without
    recursion, where DRF's JSONField would re-encode it and fail on deep nesting."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be a JSON object")
        return data


class EmitSerializer(StrictFieldsMixin, serializers.Serializer):
    event_type = serializers.CharField()
    workspace_id = serializers.CharField(required=False, allow_null=True, allow_blank=False)
    payload = PayloadField(required=False, default=dict)
    recipients = BoundedListField(
        child=serializers.IntegerField(), required=False, allow_null=True,
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
    workspace_id = serializers.SlugRelatedField(
        source="workspace", slug_field="public_id", read_only=True
    )

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
