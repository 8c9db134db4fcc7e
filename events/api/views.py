from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from events.exceptions import EmitError
from events.models import EventType
from events.services import event_emit, event_type_update
from notifications.selectors import RoutingRules

from .parsers import EmitJSONParser
from .permissions import staff_with
from .serializers import (
    EmitSerializer,
    EventSerializer,
    EventTypeSerializer,
    EventTypeUpdateSerializer,
)
from .throttles import TokenThrottle


class CanEmitEvents(permissions.BasePermission):
    message = "You need the 'events.emit_event' permission to emit events."

    def has_permission(self, request, view):
        return request.user.has_perm("events.emit_event")


class EventTypeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The event catalog with effective priority and channels. Staff may PATCH."""

    serializer_class = EventTypeSerializer
    permission_classes = [staff_with(write=("events.change_eventtype",), public_read=True)]
    lookup_field = "key"
    lookup_value_regex = r"[^/]+"
    pagination_class = None

    def get_queryset(self):
        event_types = EventType.objects.select_related("category")
        category = self.request.query_params.get("category")
        if category:
            event_types = event_types.filter(category__slug=category)
        return event_types

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "routing_rules": RoutingRules()}

    @extend_schema(request=EventTypeUpdateSerializer, responses=EventTypeSerializer)
    def partial_update(self, request, key=None):
        event_type = self.get_object()
        update = EventTypeUpdateSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        event_type_update(event_type=event_type, **update.validated_data)
        return Response(self.get_serializer(event_type).data)


class EventCreateView(APIView):
    """Emit an event; the same service as ``emit()``."""

    permission_classes = [permissions.IsAuthenticated, CanEmitEvents]
    parser_classes = [EmitJSONParser]

    @extend_schema(request=EmitSerializer, responses={
        201: EventSerializer, 200: OpenApiResponse(EventSerializer, "An earlier event with the "
                                                   "same dedupe_key; nobody is notified again."),
    })
    def post(self, request):
        serializer = EmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with transaction.atomic():
                event = event_emit(
                    data["event_type"],
                    payload=data.get("payload"),
                    workspace=data.get("workspace_id"),
                    recipients=data.get("recipients"),
                    dedupe_key=data.get("dedupe_key"),
                    occurred_at=data.get("occurred_at"),
                    emitted_by=request.user,  # scoped to the caller's workspaces
                )
        except EmitError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        code = status.HTTP_200_OK if event.deduplicated else status.HTTP_201_CREATED
        return Response(EventSerializer(event).data, status=code)


class AuthTokenView(ObtainAuthToken):
    """Username and password for an API token; throttled per client address."""

    throttle_classes = [TokenThrottle]
    throttle_scope = "auth-token"
