from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.backends.webhook import WEBHOOK_CHANNEL
from core.errors import Conflict
from core.openapi import refuses
from events.api.pagination import CursorPagination
from events.api.parsers import JSONParser
from events.api.permissions import StaffModelPermissions, staff_with
from events.api.serializers import refuse_fields
from events.exceptions import BrokerUnavailable

from ..deliveries.manual import DeliveryNotRetryable, delivery_replay, delivery_retry
from ..models import RoutingRule
from ..routing.files import INHIBIT_PERMISSIONS, ROUTING_FILE, routing_export, routing_import
from ..selectors import bell, deliveries, digests, preferences
from ..services import attention, incidents, reading
from ..services.digests import digest_flush_enqueue
from ..services.preferences import preferences_update
from ..services.rules import routing_rule_delete, routing_rule_set
from .etag import etag_matches, not_modified, notification_etag, with_etag
from .preferences import PreferencesSerializer
from .serializers import (
    DeliveryAttemptSerializer,
    DeliveryFilterSerializer,
    DeliverySerializer,
    DigestFlushQueuedSerializer,
    DigestFlushSerializer,
    MarkedSerializer,
    NotificationFilterSerializer,
    NotificationIdsSerializer,
    NotificationSerializer,
    RoutingImportResultSerializer,
    RoutingImportSerializer,
    RoutingRuleSerializer,
    SnoozeSerializer,
    UnreadCountSerializer,
)


class NotificationPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


NOTIFICATION_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="The ETag of your last answer: 304 with no body while nothing changed.")


@extend_schema_view(
    list=extend_schema(parameters=[NotificationFilterSerializer, IF_NONE_MATCH]),
    retrieve=extend_schema(parameters=[NOTIFICATION_ID]),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    """The signed-in user's own notifications, newest first. Others' are 404.

    The list and the unread count carry an ETag: with ``If-None-Match`` an unchanged
    answer is a 304 that costs one query (``notifications.api.etag``).
    """

    serializer_class = NotificationSerializer
    pagination_class = NotificationPagination
    lookup_value_regex = r"\d+"

    def list(self, request, *args, **kwargs):
        etag = notification_etag(request)
        if etag_matches(request, etag):
            return not_modified(etag)
        return with_etag(super().list(request, *args, **kwargs), etag)

    def get_queryset(self):
        if self.action != "list":  # one notification, snoozed or not
            return bell.notification_list(user=self.request.user, snoozed=None)
        filters = NotificationFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return bell.notification_list(user=self.request.user, **filters.validated_data)

    @extend_schema(request=None, responses=NotificationSerializer, parameters=[NOTIFICATION_ID])
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        refuse_fields(request.data)
        notification = reading.notification_mark_read(notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=NotificationSerializer, parameters=[NOTIFICATION_ID])
    @action(detail=True, methods=["post"])
    def unread(self, request, pk=None):
        refuse_fields(request.data)
        notification = reading.notification_mark_unread(notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=SnoozeSerializer, responses=NotificationSerializer,
                   parameters=[NOTIFICATION_ID])
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        """Out of the unread count and the list until ``until`` (or for ``minutes``); back,
        unread, within a minute of it."""
        serializer = SnoozeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notification = attention.notification_snooze(notification=self.get_object(),
                                                     **serializer.validated_data)
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=NotificationSerializer,
                   parameters=[NOTIFICATION_ID])
    @action(detail=True, methods=["post"])
    @refuses(Conflict)
    def acknowledge(self, request, pk=None):
        """Acknowledge the event for everyone it went to (its pending escalation is
        cancelled) and mark your copy read. Already acknowledged: 200, saying by whom."""
        refuse_fields(request.data)
        incidents.notification_acknowledge(notification=self.get_object(),
                                           user=request.user)
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=None, responses=NotificationSerializer, parameters=[NOTIFICATION_ID])
    @action(detail=True, methods=["post"])
    def unsnooze(self, request, pk=None):
        refuse_fields(request.data)
        notification = attention.notification_unsnooze(notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses={200: {"type": "object",
                                                  "properties": {"marked": {"type": "integer"}}}})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        refuse_fields(request.data)
        return Response({"marked": reading.notification_mark_all_read(user=request.user)})

    @extend_schema(request=NotificationIdsSerializer, responses=MarkedSerializer,
                   operation_id="notifications_read_many")
    @action(detail=False, methods=["post"], url_path="read")
    def read_many(self, request):
        """Mark several of your notifications read; ids that are not yours are ignored."""
        serializer = NotificationIdsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marked = reading.notifications_mark_read(user=request.user,
                                                  ids=serializer.validated_data["ids"])
        return Response(MarkedSerializer({"marked": marked}).data)

    @extend_schema(responses=UnreadCountSerializer, parameters=[IF_NONE_MATCH])
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        # Polled by the bell: never cached, but a repeated poll with the ETag is a cheap 304.
        # One query gives both the version (the ETag) and the counts.
        state = bell.notification_bell_state(user=request.user)
        etag = notification_etag(request, version=state.version)
        if etag_matches(request, etag):
            return not_modified(etag)
        return with_etag(Response(state.unread), etag)


class PreferencesView(APIView):
    """Your channel choices per category (in-app, email); critical events always arrive."""

    @extend_schema(responses=PreferencesSerializer)
    def get(self, request):
        return Response(self._answer(request.user))

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer)
    def put(self, request):
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        preferences_update(user=request.user, categories=data.get("categories"),
                           timezone_name=data.get("timezone"),
                           quiet_hours=data.get("quiet_hours", ...))
        return Response(self._answer(request.user))

    @staticmethod
    def _answer(user) -> dict:
        return PreferencesSerializer({
            "categories": preferences.preferences_get(user=user),
            "channels": preferences.preference_channels(),
            **preferences.quiet_hours_get(user=user),
            "critical_always_delivered": True}).data


class RoutingRuleViewSet(viewsets.ModelViewSet):
    """Routing rules per category or event type (staff)."""

    refusals = {"create": (Conflict,), "update": (Conflict,), "partial_update": (Conflict,)}

    serializer_class = RoutingRuleSerializer
    permission_classes = [StaffModelPermissions]
    queryset = RoutingRule.objects.select_related("category", "event_type")

    def perform_create(self, serializer):
        serializer.instance = routing_rule_set(**serializer.validated_data, new=True)

    def perform_update(self, serializer):
        rule, data = serializer.instance, serializer.validated_data
        category = data.get("category", rule.category)
        event_type = data.get("event_type", rule.event_type)
        if serializer.partial:  # naming one target moves the rule to it
            if data.get("category") and "event_type" not in data:
                event_type = None
            if data.get("event_type") and "category" not in data:
                category = None
            if category is None and event_type is None:
                raise Conflict("This change would leave the rule without a target: name a "
                               "category or an event type.", field="category",
                               code="no_target")
        serializer.instance = routing_rule_set(
            rule=rule,
            category=category,
            event_type=event_type,
            channels=data.get("channels", rule.channels),
            extra_emails=data.get("extra_emails"),
            escalate=data.get("escalate", ...),
            notify_resolved=data.get("notify_resolved"),
        )

    def perform_destroy(self, instance):
        routing_rule_delete(rule=instance)


ROUTING_READ = ("notifications.view_routingrule",)
# An import writes rules (and with replace deletes them) and sets priority overrides.
ROUTING_WRITE = ("notifications.add_routingrule", "notifications.change_routingrule",
                 "notifications.delete_routingrule", "events.change_eventtype")


class RoutingExportView(APIView):
    permission_classes = [staff_with(read=ROUTING_READ)]

    @extend_schema(responses={(200, "application/yaml"): ROUTING_FILE})
    def get(self, request):
        response = HttpResponse(routing_export(), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="routing.yaml"'
        return response


class RoutingImportView(APIView):
    """Apply a routing file atomically; 400 names the offending key path."""

    permission_classes = [staff_with(write=ROUTING_WRITE)]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=RoutingImportSerializer, responses=RoutingImportResultSerializer)
    def post(self, request):
        serializer = RoutingImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = routing_import(serializer.validated_data["yaml"],
                                replace=serializer.validated_data["replace"],
                                inhibit_allowed=request.user.has_perms(INHIBIT_PERMISSIONS))
        return Response(RoutingImportResultSerializer(result).data)


class DeliveryPagination(CursorPagination):
    ordering = ("-created_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(list=extend_schema(parameters=[DeliveryFilterSerializer]))
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every planned send per channel and recipient, with its status (staff)."""

    serializer_class = DeliverySerializer
    permission_classes = [staff_with(read=("notifications.view_delivery",))]
    pagination_class = DeliveryPagination

    def get_queryset(self):
        if self.action != "list":
            return deliveries.delivery_list()
        filters = DeliveryFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = dict(filters.validated_data)
        endpoint = wanted.pop("endpoint", None)
        if endpoint is not None:  # a webhook endpoint: the target of its channel's sends
            wanted.update(channel=WEBHOOK_CHANNEL, target=str(endpoint))
        return deliveries.delivery_list(**wanted)

    @extend_schema(responses=DeliveryAttemptSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def attempts(self, request, pk=None):
        """Each attempt of this delivery, first to last."""
        delivery = self.get_object()
        return Response(DeliveryAttemptSerializer(deliveries.delivery_attempt_list(
            delivery=delivery), many=True).data)

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"],
            permission_classes=[staff_with(write=("notifications.change_delivery",))])
    @refuses(DeliveryNotRetryable)
    def retry(self, request, pk=None):
        """Send a failed delivery again under the same id (409 when it is not failed)."""
        refuse_fields(request.data)
        delivery = delivery_retry(delivery_id=self.get_object().pk)
        return Response(self.get_serializer(delivery).data)

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"],
            permission_classes=[staff_with(write=("notifications.change_delivery",))])
    @refuses(DeliveryNotRetryable)
    def replay(self, request, pk=None):
        """Send a delivered or failed delivery again under the same id (409 otherwise)."""
        refuse_fields(request.data)
        delivery = delivery_replay(delivery_id=self.get_object().pk)
        return Response(self.get_serializer(delivery).data)


class DigestPendingView(APIView):
    """Items waiting for a flush, per bucket and channel (staff)."""

    permission_classes = [staff_with(read=("notifications.view_digest",))]

    @extend_schema(responses={200: {"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": {"type": "integer"}}}})
    def get(self, request):
        return Response(digests.pending_digest_table())


class DigestFlushView(APIView):
    """Queue a flush of one bucket now, as the periodic task would; each item once."""

    permission_classes = [staff_with(write=("notifications.flush_digests",))]

    @extend_schema(request=DigestFlushSerializer, responses={202: DigestFlushQueuedSerializer})
    @refuses(BrokerUnavailable)
    def post(self, request):
        serializer = DigestFlushSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bucket = serializer.validated_data["bucket"]
        digest_flush_enqueue(bucket=bucket)
        return Response(DigestFlushQueuedSerializer({"bucket": bucket, "queued": True}).data,
                        status=status.HTTP_202_ACCEPTED)
