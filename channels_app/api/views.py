from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.permissions import StaffModelPermissions, staff_with
from events.api.serializers import refuse_fields

from ..models import WebhookEndpoint
from ..services import digests as digest_services
from ..services import email as services
from ..services import webhooks as webhook_services
from ..transports import smtp
from .serializers import (
    DigestSettingSerializer,
    EmailSettingsSerializer,
    EmailSettingsTestSerializer,
    SendTestEmailSerializer,
    TestResultSerializer,
    WebhookEndpointSerializer,
    WebhookTestResultSerializer,
)

VIEW = ("channels_app.view_emailsettings",)
CHANGE = ("channels_app.change_emailsettings",)


class EmailSettingsView(APIView):
    """The SMTP settings of the email channel (one record)."""

    permission_classes = [staff_with(read=VIEW, write=CHANGE)]
    serializer_class = EmailSettingsSerializer

    def get(self, request):
        return Response(EmailSettingsSerializer(services.email_settings_get()).data)

    def put(self, request):
        return self._update(request, partial=False)

    def patch(self, request):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        serializer = EmailSettingsSerializer(services.email_settings_get(), data=request.data,
                                             partial=partial)
        serializer.is_valid(raise_exception=True)
        settings = services.email_settings_update(values=serializer.validated_data)
        return Response(EmailSettingsSerializer(settings).data)


class EmailTestConnectionView(APIView):
    """Connect, negotiate encryption and authenticate, with the settings in the body or the
    stored ones. Always 200: ``{"ok": true}`` or ``{"ok": false, "error", "detail"}``."""

    # The stored password is used: testing needs the permission to change the settings.
    permission_classes = [staff_with(write=CHANGE)]

    @extend_schema(request=EmailSettingsTestSerializer, responses=TestResultSerializer)
    def post(self, request):
        serializer = EmailSettingsTestSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        result = services.email_test_connection(overrides=serializer.validated_data)
        return Response(result.as_dict(), status=status.HTTP_200_OK)


class EmailSendTestView(APIView):
    """Send a test email now to ``to`` (default: the caller's address), with the settings in
    the body or the stored ones. Always 200 with the same answer as test-connection."""

    permission_classes = [staff_with(write=CHANGE)]

    @extend_schema(request=SendTestEmailSerializer, responses=TestResultSerializer)
    def post(self, request):
        serializer = SendTestEmailSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        overrides = dict(serializer.validated_data)
        to = overrides.pop("to", "") or request.user.email
        if not to:
            return Response(smtp.Result(
                ok=False, error=smtp.REJECTED,
                detail="No address to send to: give \"to\", or set an email address on your "
                       "account.").as_dict())
        return Response(services.email_send_test(to=to, overrides=overrides).as_dict())


class WebhookEndpointViewSet(viewsets.ModelViewSet):
    """Webhook endpoints (staff with the endpoint permissions); ``secret`` is write-only."""

    permission_classes = [StaffModelPermissions]
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.select_related("workspace").order_by("pk")

    def perform_create(self, serializer):
        serializer.instance = webhook_services.webhook_endpoint_save(
            values=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = webhook_services.webhook_endpoint_save(
            values=serializer.validated_data, endpoint=serializer.instance)

    def perform_destroy(self, instance):
        webhook_services.webhook_endpoint_delete(endpoint=instance)

    @extend_schema(request=None, responses=WebhookTestResultSerializer)
    @action(detail=True, methods=["post"], permission_classes=[
        staff_with(write=("channels_app.change_webhookendpoint",))])
    def test(self, request, pk=None):
        """Send a signed sample event to the endpoint now; always 200 with the outcome."""
        refuse_fields(request.data)
        result = webhook_services.webhook_endpoint_test(endpoint=self.get_object())
        return Response(result.as_dict())


CHANNEL = OpenApiParameter("channel", str, OpenApiParameter.PATH,
                           description="An installed channel that sends digests.")


@extend_schema_view(retrieve=extend_schema(parameters=[CHANNEL]),
                    partial_update=extend_schema(parameters=[CHANNEL]))
class DigestSettingViewSet(viewsets.GenericViewSet):
    """Per channel: batch medium, low and info into digests, or send at once (staff)."""

    serializer_class = DigestSettingSerializer
    permission_classes = [staff_with(read=("channels_app.view_digestsetting",),
                                     write=("channels_app.change_digestsetting",))]
    lookup_field = "channel"
    pagination_class = None

    def list(self, request):
        return Response(self.get_serializer(digest_services.digest_settings_list(),
                                            many=True).data)

    def retrieve(self, request, channel=None):
        return Response(self.get_serializer(
            digest_services.digest_setting_get(channel=channel)).data)

    @extend_schema(request=DigestSettingSerializer, responses=DigestSettingSerializer)
    def partial_update(self, request, channel=None):
        setting = digest_services.digest_setting_get(channel=channel)
        serializer = self.get_serializer(setting, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        setting = digest_services.digest_setting_set(
            channel=setting.channel,
            digest_enabled=serializer.validated_data.get("digest_enabled",
                                                         setting.digest_enabled),
        )
        return Response(self.get_serializer(setting).data)
