from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer

from events.models import Event
from events.signin import signin_attempt


class StrictFieldsMixin:
    """Refuse fields the serializer does not know: a 400 naming each, never ignored.

    A misspelt field (say "workspace", or "replce") must not silently do something else.
    """

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({
                    name: [f"unknown field; known: {', '.join(self.fields)}"]
                    for name in unknown
                })
        return super().to_internal_value(data)


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
    recipients = serializers.ListField(
        child=serializers.IntegerField(), required=False, allow_null=True,
        help_text="User ids: narrows the audience (they must be members of the workspace).",
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
