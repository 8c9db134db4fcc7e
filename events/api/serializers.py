from rest_framework import serializers

from events.models import Event


class EmitSerializer(serializers.Serializer):
    event_type = serializers.CharField()
    workspace_id = serializers.CharField(required=False, allow_null=True, allow_blank=False)
    payload = serializers.JSONField(required=False, default=dict)
    recipients = serializers.ListField(
        child=serializers.IntegerField(), required=False, allow_null=True,
        help_text="User ids: narrows the audience (they must be members of the workspace).",
    )
    dedupe_key = serializers.CharField(required=False, allow_null=True, max_length=200)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data):
        # A misspelt field (say "workspace") must not silently send an event to the wrong
        # audience: refuse what this endpoint does not know.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({
                    name: [f"unknown field; known: {', '.join(self.fields)}"]
                    for name in unknown
                })
        return super().to_internal_value(data)

    def validate_payload(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value


class EventSerializer(serializers.ModelSerializer):
    event_type = serializers.SlugRelatedField(slug_field="key", read_only=True)
    workspace_id = serializers.SlugRelatedField(
        source="workspace", slug_field="public_id", read_only=True
    )

    class Meta:
        model = Event
        fields = ["id", "event_type", "priority", "workspace_id", "payload", "dedupe_key",
                  "occurred_at", "created_at", "status"]
        read_only_fields = fields
