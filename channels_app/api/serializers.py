from rest_framework import serializers

from events.api.serializers import (
    BoundedListField,
    CategorySlugField,
    EventTypeKeyField,
    StrictFieldsMixin,
)
from events.models import Workspace

from ..models import (
    ROUTING_KEY_MAX_LENGTH,
    SECRET_MAX_LENGTH,
    DigestSetting,
    EmailSettings,
    WebhookEndpoint,
)


class EmailSettingsSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """The email settings; ``password`` is write-only (empty or absent keeps the stored one).

    Saving checks the whole record (``EmailSettings.clean``): ``enabled`` needs a host, a
    port and a from address.
    """

    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False,
        max_length=SECRET_MAX_LENGTH, style={"input_type": "password"},
        help_text="Write-only. Empty or absent keeps the stored password.")
    password_set = serializers.SerializerMethodField(help_text="Whether a password is stored.")

    class Meta:
        model = EmailSettings
        fields = ["host", "port", "encryption", "username", "password", "password_set",
                  "from_email", "from_name", "timeout", "enabled"]

    def get_password_set(self, settings: EmailSettings) -> bool:
        return bool(settings.password)


class EmailSettingsTestSerializer(EmailSettingsSerializer):
    """Settings to test instead of the stored ones; each field given overrides its value."""

    class Meta(EmailSettingsSerializer.Meta):
        fields = ["host", "port", "encryption", "username", "password", "from_email",
                  "from_name", "timeout"]
        # Tested, not stored: the singleton's validators (unique etc.) do not apply.
        validators = []


class SendTestEmailSerializer(EmailSettingsTestSerializer):
    to = serializers.EmailField(
        required=False, help_text="Where to send the test email; default: your own address.")

    class Meta(EmailSettingsTestSerializer.Meta):
        fields = ["to", *EmailSettingsTestSerializer.Meta.fields]


class TestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.ChoiceField(
        required=False, help_text="Present when ok is false.",
        choices=["unreachable", "timeout", "tls_failed", "starttls_unsupported", "auth_failed",
                 "rejected", "not_configured"])
    detail = serializers.CharField(required=False, help_text="A human sentence.")


class WorkspaceSlugField(serializers.SlugRelatedField):
    """A workspace by its public id; empty is the same as null."""

    openapi = {"pattern": "^(|ws_[a-z0-9_]{1,37})$", "minLength": 0}


#: A port a receiver can listen on: 1 to 65535.
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"


class WebhookUrlField(serializers.CharField):
    """A receiver's URL. The schema gives the common shape (https, a host name, a port from
    1 to 65535, a path); the SSRF guard also refuses a host that resolves to an internal
    address, which no schema can say (README "Webhooks")."""

    openapi = {"pattern": f"^https://({_LABEL}\\.)+[a-z]{{2,63}}(:{_PORT})?(/[A-Za-z0-9._~/-]*)?$"}


#: The most category slugs or event type keys one endpoint's filter lists.
FILTER_MAX_ITEMS = 1000


class WebhookEndpointSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A webhook endpoint. ``secret`` and ``routing_key`` are write-only: absent or "" keeps
    the stored value, null removes it. ``workspace_id`` is the workspace's public id."""

    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, allow_null=True,
        trim_whitespace=False, max_length=SECRET_MAX_LENGTH, style={"input_type": "password"},
        help_text="Write-only. Absent or empty keeps the stored secret; null removes it.")
    secret_set = serializers.SerializerMethodField(help_text="Whether a secret is stored.")
    routing_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, allow_null=True,
        max_length=ROUTING_KEY_MAX_LENGTH,
        help_text="PagerDuty routing key. Write-only, like secret.")
    workspace_id = WorkspaceSlugField(
        source="workspace", slug_field="public_id", queryset=Workspace.objects.all(),
        required=False, allow_null=True, help_text="Only this workspace's events; null: all.")
    # Bounded before the catalog is asked: each item must be a known, distinct slug or key.
    categories = BoundedListField(child=CategorySlugField(max_length=50), required=False,
                                  max_length=FILTER_MAX_ITEMS, distinct=True,
                                  help_text="Category slugs; empty: every category.")
    event_types = BoundedListField(child=EventTypeKeyField(max_length=120),
                                   required=False, max_length=FILTER_MAX_ITEMS, distinct=True,
                                   help_text="Event type keys; empty: every event type.")
    url = WebhookUrlField(max_length=2000, help_text="https only.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "secret", "secret_set", "max_retries", "is_active",
                  "categories", "event_types", "workspace_id", "format", "routing_key",
                  "consecutive_failures", "deactivated_reason", "deactivated_at",
                  "created_at", "updated_at"]
        read_only_fields = ["consecutive_failures", "deactivated_reason", "deactivated_at",
                            "created_at", "updated_at"]

    def get_secret_set(self, endpoint: WebhookEndpoint) -> bool:
        return bool(endpoint.secret)


class WebhookTestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()


class DigestSettingSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = DigestSetting
        fields = ["channel", "digest_enabled"]
        read_only_fields = ["channel"]
