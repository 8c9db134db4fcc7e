"""REST for attention controls: a user's mutes, staff's silences, and explain."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApplicationError, Conflict
from core.openapi import refuses
from events.api.permissions import StaffModelPermissions, staff_with
from events.api.serializers import refuse_fields
from events.models import Event, EventType, Workspace

from ..models import Mute, Silence
from ..routing.explain import event_explain, routing_explain
from ..services import attention
from .serializers import (
    ExplainRequestSerializer,
    ExplainSerializer,
    MuteSerializer,
    SilenceSerializer,
)


class MuteViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
                  viewsets.GenericViewSet):
    """Your mutes: an event type, a category or a workspace, for a while or until removed.
    Non-critical events they match reach you on no channel."""

    serializer_class = MuteSerializer
    pagination_class = None
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return Mute.objects.filter(user=self.request.user).select_related(
            "event_type", "category", "workspace")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = attention.mute_create(
            user=self.request.user, event_type=data.get("event_type", {}).get("key"),
            category=data.get("category", {}).get("slug"),
            workspace_id=data.get("workspace", {}).get("public_id"), until=data.get("until"))

    def perform_destroy(self, instance):
        attention.mute_delete(mute=instance)


class SilenceViewSet(viewsets.ModelViewSet):
    """Silences (staff with the silence permissions): events they match while active are kept
    as ``silenced`` and delivered on no channel, whatever their priority."""

    serializer_class = SilenceSerializer
    permission_classes = [StaffModelPermissions]
    queryset = Silence.objects.select_related("created_by").order_by("-starts_at", "-pk")
    lookup_value_regex = r"\d+"

    def perform_create(self, serializer):
        serializer.instance = attention.silence_save(values=serializer.validated_data,
                                                     created_by=self.request.user)

    def perform_update(self, serializer):
        serializer.instance = attention.silence_save(values=serializer.validated_data,
                                                     silence=serializer.instance)

    @extend_schema(request=None, responses=SilenceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[
        staff_with(write=("notifications.expire_silence",))])
    @refuses(Conflict)
    def expire(self, request, pk=None):
        """End the silence now (409 when it has ended already)."""
        refuse_fields(request.data)
        silence = attention.silence_expire(silence=self.get_object())
        return Response(self.get_serializer(silence).data)


EXPLAIN = ("events.view_event",)


class EventExplainView(APIView):
    """Why ``user`` got an event on each channel, or did not (staff)."""

    permission_classes = [staff_with(read=EXPLAIN)]

    @extend_schema(parameters=[OpenApiParameter("user", OpenApiTypes.STR, required=True,
                                                pattern=r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
                                                description="A username.")],
                   responses=ExplainSerializer)
    def get(self, request, event_id):
        event = get_object_or_404(Event.objects.select_related("event_type"), pk=event_id)
        user = _user(request.query_params.get("user"))
        return Response(event_explain(event=event, user=user).as_dict())


class RoutingExplainView(APIView):
    """The same as a dry run, for an event that is not emitted: nothing is written."""

    permission_classes = [staff_with(write=EXPLAIN)]

    @extend_schema(request=ExplainRequestSerializer, responses=ExplainSerializer)
    def post(self, request):
        serializer = ExplainRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event_type = EventType.objects.select_related("category").filter(
            key=data["event_type"]).first()
        if event_type is None:
            raise ApplicationError(f"unknown event type {data['event_type']!r}",
                                   field="event_type")
        workspace = None
        if data.get("workspace_id"):
            workspace = Workspace.objects.filter(public_id=data["workspace_id"]).first()
            if workspace is None:
                raise ApplicationError(f"unknown workspace {data['workspace_id']!r}",
                                       field="workspace_id")
        return Response(routing_explain(event_type=event_type, workspace=workspace,
                                        payload=data.get("payload") or {},
                                        user=_user(data["user"])).as_dict())


def _user(username):
    if not username:
        raise ApplicationError("Name the user (a username).", field="user")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"unknown user {username[:150]!r}", field="user")
    return user
