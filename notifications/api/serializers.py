from django.utils import timezone
from rest_framework import serializers

from channels_app.backends import channel_names, get_backend
from core.openapi import at_most_one_of, exactly_one_of
from events.api.serializers import (
    BoundedListField,
    CategorySlugField,
    EventTypeKeyField,
    ListedSlugRelatedField,
    StrictFieldsMixin,
    WorkspaceIdField,
)
from events.catalog import Priority
from events.models import Category, EventType

from ..models import Bucket, Delivery, DeliveryAttempt, Notification, RoutingRule
from ..routing.files import routing_file_read
from .incidents import EscalationSerializer


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
    acknowledged_at = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="When someone acknowledged the event (for everyone); null until then.")
    acknowledged_by = serializers.SerializerMethodField(
        help_text="Who acknowledged it: a username, or the address whose email link was used; "
                  "null until then.")
    escalated_at = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="When it was sent again, nobody having acknowledged it in time.")
    resolved_at = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="When the event was resolved (by hand, or by an event that resolves it).")

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "priority", "category", "event_type", "workspace_id",
                  "workspace_name", "event_id", "digest_id", "payload", "occurred_at", "items",
                  "item_count", "is_read", "read_at", "snoozed_until", "repeat_count",
                  "last_occurred_at", "acknowledged_at", "acknowledged_by", "escalated_at",
                  "resolved_at", "created_at"]
        read_only_fields = fields

    def get_workspace_id(self, notification) -> str | None:
        return notification.workspace_public_id if notification.workspace_id else None

    def get_workspace_name(self, notification) -> str | None:
        return notification.workspace_name if notification.workspace_id else None

    def get_payload(self, notification) -> dict | None:
        return notification.event_payload if notification.event_id else None

    def get_occurred_at(self, notification) -> str | None:
        return _datetime(notification.event_occurred_at) if notification.event_id else None

    def get_acknowledged_by(self, notification) -> str | None:
        return notification.acknowledged_by or None

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
            "snoozed_until": _datetime(notification.snoozed_until),
            "repeat_count": notification.repeat_count,
            "last_occurred_at": _datetime(notification.last_occurred_at),
            "acknowledged_at": _datetime(notification.acknowledged_at),
            "acknowledged_by": self.get_acknowledged_by(notification),
            "escalated_at": _datetime(notification.escalated_at),
            "resolved_at": _datetime(notification.resolved_at),
            "created_at": _datetime(notification.created_at),
        }


_datetime = serializers.DateTimeField().to_representation


class NotificationFilterSerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="true: unread only; false: read only.")
    snoozed = serializers.BooleanField(
        required=False, default=False,
        help_text="true: only your snoozed notifications (left out of the default list).")
    priority = serializers.ChoiceField(choices=Priority.VALUES, required=False)
    category = CategorySlugField(required=False, help_text="Category slug, e.g. queries")
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


class RoutingRuleSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A rule's target is exactly one of ``category`` and ``event_type``. A PATCH that names
    one moves the rule to it (the other is cleared); one that would leave the rule no target
    is a 409."""

    openapi = exactly_one_of("category", "event_type")
    openapi_patch = at_most_one_of("category", "event_type")

    escalate = EscalationSerializer(
        required=False, allow_null=True,
        help_text="Critical and high events nobody acknowledges in time go out again.")
    category = ListedSlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False, allow_null=True)
    event_type = ListedSlugRelatedField(
        slug_field="key", queryset=EventType.objects.all(), required=False, allow_null=True)

    class Meta:
        model = RoutingRule
        fields = ["id", "category", "event_type", "channels", "extra_emails", "escalate",
                  "notify_resolved", "updated_at"]
        read_only_fields = ["id", "updated_at"]


class RoutingImportSerializer(StrictFieldsMixin, serializers.Serializer):
    openapi = {"anyOf": [{"required": ["yaml"]}, {"required": ["file"]}]}

    yaml = serializers.CharField(required=False, help_text="The routing file's text.")
    file = serializers.FileField(required=False, help_text="Or the file itself (multipart).")
    replace = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if "file" in attrs:  # bytes: the import checks their size and that they are UTF-8
            attrs["yaml"] = routing_file_read(attrs.pop("file"))
        if not attrs.get("yaml"):
            raise serializers.ValidationError(
                {"yaml": ["send the routing file as 'yaml' or 'file'"]}
            )
        return attrs


class RoutingImportResultSerializer(serializers.Serializer):
    rules_changed = serializers.IntegerField()
    priorities_changed = serializers.IntegerField()
    grouping_changed = serializers.IntegerField()
    inhibit_rules_changed = serializers.IntegerField()
    removed = serializers.IntegerField()


class DeliverySerializer(serializers.ModelSerializer):
    """A delivery; ``target`` is its channel's (an address, an endpoint id, a user id), and
    ``address`` / ``endpoint_id`` say it for email and webhooks (null otherwise)."""

    event_type = serializers.SerializerMethodField()
    address = serializers.SerializerMethodField()
    endpoint_id = serializers.SerializerMethodField()

    bucket = serializers.ChoiceField(choices=Bucket.choices, allow_blank=True, read_only=True,
                                     help_text="Its digest bucket; empty when sent at once.")

    class Meta:
        model = Delivery
        fields = ["id", "kind", "event_id", "event_type", "channel", "target", "user_id",
                  "address", "endpoint_id", "priority", "bucket", "digest_id", "status",
                  "decision", "reason", "release_at", "attempts", "last_error",
                  "last_status_code", "next_attempt_at", "created_at", "updated_at",
                  "delivered_at"]
        read_only_fields = fields

    def get_event_type(self, delivery) -> str:
        """The event's type key, or ``"digest"`` for a digest's delivery."""
        return delivery.event.event_type.key if delivery.event_id else "digest"

    def _channel_fields(self, delivery) -> dict:
        backend = get_backend(delivery.channel)
        if backend is None:
            return {}
        return backend.target_fields(delivery.target, delivery.target_data)

    def get_address(self, delivery) -> str | None:
        """The email address of an email delivery."""
        return self._channel_fields(delivery).get("address")

    def get_endpoint_id(self, delivery) -> int | None:
        """The webhook endpoint of a webhook delivery."""
        return self._channel_fields(delivery).get("endpoint_id")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "outcome", "status_code", "error",
                  "response"]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer):
    """Filters of the delivery log; a filter left empty (``status=``) filters nothing."""

    channel = serializers.ChoiceField(choices=(), required=False)
    status = serializers.ChoiceField(choices=Delivery.Status.values, required=False)
    bucket = serializers.ChoiceField(choices=Bucket.values, required=False)
    event_type = serializers.CharField(required=False)
    endpoint = serializers.IntegerField(required=False, help_text="A webhook endpoint's id.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channel_names()  # the installed channels


class DigestFlushSerializer(StrictFieldsMixin, serializers.Serializer):
    bucket = serializers.ChoiceField(choices=Bucket.values)


class DigestFlushQueuedSerializer(serializers.Serializer):
    bucket = serializers.CharField()
    queued = serializers.BooleanField()


class SnoozeSerializer(StrictFieldsMixin, serializers.Serializer):
    openapi = {"oneOf": [{"required": ["minutes"]}, {"required": ["until"]}]}

    minutes = serializers.IntegerField(required=False, min_value=1, max_value=43200,
                                       help_text="1 to 43200 (30 days).")
    until = serializers.DateTimeField(required=False, help_text="ISO-8601 with an offset.")

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError({"minutes": ['Give either "minutes" or "until".']})
        return attrs


class MuteSerializer(StrictFieldsMixin, serializers.Serializer):
    """One of ``event_type``, ``category`` or ``workspace_id``; ``until`` or null."""

    openapi = exactly_one_of("event_type", "category", "workspace_id")

    id = serializers.IntegerField(read_only=True)
    event_type = EventTypeKeyField(required=False, max_length=120, allow_null=True,
                                   source="event_type.key")
    category = CategorySlugField(required=False, max_length=50, allow_null=True,
                                 source="category.slug")
    workspace_id = WorkspaceIdField(required=False, max_length=40, allow_null=True,
                                    source="workspace.public_id")
    until = serializers.DateTimeField(required=False, allow_null=True,
                                      help_text="When the mute ends; null: until removed.")
    created_at = serializers.DateTimeField(read_only=True)


class SilenceMatchersSerializer(StrictFieldsMixin, serializers.Serializer):
    openapi = {"minProperties": 1}

    event_type = EventTypeKeyField(required=False, max_length=120)
    category = CategorySlugField(required=False, max_length=50)
    workspace_id = WorkspaceIdField(required=False, max_length=40)
    payload = serializers.DictField(required=False, allow_empty=False,
                                    help_text="{key: value}, each equal.")


class SilenceSerializer(StrictFieldsMixin, serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    matchers = SilenceMatchersSerializer()
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField()
    comment = serializers.CharField(max_length=2000)
    created_by = serializers.CharField(source="created_by.username", read_only=True,
                                       allow_null=True, help_text="Its author's username.")
    state = serializers.SerializerMethodField(help_text="active, upcoming or expired.")
    created_at = serializers.DateTimeField(read_only=True)

    def get_state(self, silence) -> str:
        now = timezone.now()
        if silence.ends_at <= now:
            return "expired"
        return "active" if silence.starts_at <= now else "upcoming"


class ExplainRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    event_type = EventTypeKeyField(max_length=120)
    workspace_id = WorkspaceIdField(required=False, allow_null=True, max_length=40)
    payload = serializers.DictField(required=False, default=dict)
    user = serializers.CharField(max_length=150, help_text="A username.")


class ExplainSerializer(serializers.Serializer):
    priority = serializers.CharField()
    rule_source = serializers.CharField()
    channels = serializers.DictField(child=serializers.DictField(child=serializers.CharField()))
