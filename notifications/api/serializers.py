from django.conf import settings
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from channels_app.models import Channel, DigestSetting
from events.api.serializers import BoundedListField, StrictFieldsMixin
from events.catalog import Priority
from events.models import Category, EventType
from notifications.models import Bucket, Delivery, DeliveryAttempt, Notification, RoutingRule


class EventTypeSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """An event type of the catalog, with the channels it reaches and where they come from.

    A PATCH sets ``enabled`` and ``priority_override``; the rest is read-only here.
    """

    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    effective_priority = serializers.CharField(read_only=True)
    priority_override = serializers.ChoiceField(
        choices=[("", "No override"), *Priority.CHOICES], required=False, allow_blank=True
    )
    effective_channels = serializers.SerializerMethodField()
    channels_source = serializers.SerializerMethodField()

    class Meta:
        model = EventType
        fields = [
            "key", "category", "name", "label", "description", "title_template",
            "default_priority", "priority_override", "effective_priority", "enabled",
            "effective_channels", "channels_source",
        ]
        read_only_fields = [
            "key", "name", "label", "description", "title_template", "default_priority",
        ]

    def _routing(self, event_type):
        return self.context["routing_rules"].resolve(event_type)

    def get_effective_channels(self, event_type) -> list[str]:
        return self._routing(event_type).channels

    def get_channels_source(self, event_type) -> str:
        return self._routing(event_type).source


class NotificationSerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event_type_key", read_only=True)
    workspace_id = serializers.SerializerMethodField()
    workspace_name = serializers.SerializerMethodField(
        help_text="The workspace's display name; null when platform-wide.")
    is_read = serializers.BooleanField(read_only=True)
    item_count = serializers.SerializerMethodField()
    payload = serializers.SerializerMethodField(
        help_text="The event's payload; null for a digest (its items carry theirs)."
    )
    occurred_at = serializers.SerializerMethodField(
        help_text="When the event happened; null for a digest (its items carry theirs)."
    )

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "priority", "category", "event_type", "workspace_id",
                  "workspace_name", "event_id", "digest_id", "payload", "occurred_at", "items",
                  "item_count", "is_read", "read_at", "created_at"]
        read_only_fields = fields

    def get_workspace_id(self, notification) -> str | None:
        return notification.workspace_public_id if notification.workspace_id else None

    def get_workspace_name(self, notification) -> str | None:
        return notification.workspace_name if notification.workspace_id else None

    def get_payload(self, notification) -> dict | None:
        return notification.event_payload if notification.event_id else None

    def get_occurred_at(self, notification) -> str | None:
        return _datetime(notification.event_occurred_at) if notification.event_id else None

    def get_item_count(self, notification) -> int:
        return len(notification.items) if notification.kind == Notification.Kind.DIGEST else 1

    def to_representation(self, notification) -> dict:
        """The fields above, written out: the bell polls this list, and DRF's generic
        field-by-field walk cost more than the query. Expects ``notification_list``'s
        annotations (``workspace_public_id``, ``workspace_name``, ``event_payload``,
        ``event_occurred_at``)."""
        is_digest = notification.kind == Notification.Kind.DIGEST
        return {
            "id": notification.id,
            "kind": notification.kind,
            "title": notification.title,
            "priority": notification.priority,
            "category": notification.category,
            "event_type": notification.event_type_key,
            "workspace_id": self.get_workspace_id(notification),
            "workspace_name": self.get_workspace_name(notification),
            "event_id": str(notification.event_id) if notification.event_id else None,
            "digest_id": str(notification.digest_id) if notification.digest_id else None,
            "payload": self.get_payload(notification),
            "occurred_at": self.get_occurred_at(notification),
            "items": notification.items,
            "item_count": len(notification.items) if is_digest else 1,
            "is_read": notification.read_at is not None,
            "read_at": _datetime(notification.read_at),
            "created_at": _datetime(notification.created_at),
        }


_datetime = serializers.DateTimeField().to_representation


class NotificationFilterSerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, allow_null=True, default=None)
    priority = serializers.ChoiceField(choices=Priority.VALUES, required=False)
    category = serializers.CharField(required=False, help_text="Category slug, e.g. queries")
    workspace = serializers.CharField(required=False, help_text="Workspace id, e.g. ws_abc123")

    def validate_category(self, value):
        if not Category.objects.filter(slug=value).exists():
            slugs = ", ".join(Category.objects.values_list("slug", flat=True))
            raise serializers.ValidationError(f"unknown category {value!r}; known: {slugs}")
        return value


class UnreadCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    by_priority = serializers.DictField(child=serializers.IntegerField())


class NotificationIdsSerializer(StrictFieldsMixin, serializers.Serializer):
    ids = BoundedListField(  # an id is a positive 64-bit integer (the table's bigint)
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), allow_empty=False,
        max_length=1000, help_text="Ids of your own notifications, at most 1000.")


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications changed.")


class ChannelChoicesField(serializers.DictField):
    """``{"in_app": bool, "email": bool}``; which channels exist is checked by the service."""

    child = serializers.BooleanField()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for channel, value in data.items():
                if not isinstance(value, bool):
                    raise serializers.ValidationError(
                        f"{channel!r} must be true or false, not {value!r}")
        return super().to_internal_value(data)


class PreferencesSerializer(StrictFieldsMixin, serializers.Serializer):
    """PUT replaces the categories given; a channel left out of one goes back to on."""

    categories = serializers.DictField(child=ChannelChoicesField())
    critical_always_delivered = serializers.BooleanField(
        read_only=True, default=True,
        help_text="Critical events are delivered whatever the preferences say.")


class RoutingRuleSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False, allow_null=True,
        validators=[UniqueValidator(RoutingRule.objects.all(),
                                    message="This category already has a routing rule.")],
    )
    event_type = serializers.SlugRelatedField(
        slug_field="key", queryset=EventType.objects.all(), required=False, allow_null=True,
        validators=[UniqueValidator(RoutingRule.objects.all(),
                                    message="This event type already has a routing rule.")],
    )

    class Meta:
        model = RoutingRule
        fields = ["id", "category", "event_type", "channels", "extra_emails", "updated_at"]
        read_only_fields = ["id", "updated_at"]


class RoutingImportSerializer(StrictFieldsMixin, serializers.Serializer):
    yaml = serializers.CharField(required=False, help_text="The routing file's text.")
    file = serializers.FileField(required=False, help_text="Or the file itself (multipart).")
    replace = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if "file" in attrs:
            upload, limit = attrs.pop("file"), settings.DATAFI_MAX_ROUTING_FILE_BYTES
            if upload.size > limit:
                raise serializers.ValidationError(
                    {"file": [f"larger than the limit of {limit // 1024} KiB"]}
                )
            attrs["yaml"] = upload.read()  # bytes: the import checks they are UTF-8
        if not attrs.get("yaml"):
            raise serializers.ValidationError(
                {"yaml": ["send the routing file as 'yaml' or 'file'"]}
            )
        return attrs


class RoutingImportResultSerializer(serializers.Serializer):
    rules_changed = serializers.IntegerField()
    priorities_changed = serializers.IntegerField()
    removed = serializers.IntegerField()


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.SerializerMethodField()
    target = serializers.CharField(read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "kind", "event_id", "event_type", "channel", "target", "user_id",
                  "address", "endpoint_id", "priority", "bucket", "digest_id", "status",
                  "attempts", "last_error", "last_status_code", "next_attempt_at",
                  "created_at", "updated_at", "delivered_at"]
        read_only_fields = fields

    def get_event_type(self, delivery) -> str:
        """The event's type key, or ``"digest"`` for a digest's delivery."""
        return delivery.event.event_type.key if delivery.event_id else "digest"


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "outcome", "status_code", "error",
                  "response"]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.values, required=False)
    status = serializers.ChoiceField(choices=Delivery.Status.values, required=False)
    bucket = serializers.ChoiceField(choices=Bucket.values, required=False)
    event_type = serializers.CharField(required=False)
    endpoint = serializers.IntegerField(required=False)


class DigestFlushSerializer(StrictFieldsMixin, serializers.Serializer):
    bucket = serializers.ChoiceField(choices=Bucket.values)


class DigestFlushQueuedSerializer(serializers.Serializer):
    bucket = serializers.CharField()
    queued = serializers.BooleanField()


class DigestSettingSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = DigestSetting
        fields = ["channel", "digest_enabled"]
        read_only_fields = ["channel"]
