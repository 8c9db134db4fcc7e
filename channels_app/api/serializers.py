from rest_framework import serializers

from channels_app.models import EmailSettings


class EmailSettingsSerializer(serializers.ModelSerializer):
    """The email settings; ``password`` is write-only (empty or absent keeps the stored one)."""

    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False,
        style={"input_type": "password"},
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
