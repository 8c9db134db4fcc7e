from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.views import APIView

from events.exceptions import SigninThrottled
from events.services.emit import event_emit

from .parsers import EmitJSONParser
from .serializers import EmitSerializer, EventSerializer, SigninTokenSerializer


class CanEmitEvents(permissions.BasePermission):
    message = "You need the 'events.emit_event' permission to emit events."

    def has_permission(self, request, view):
        return request.user.has_perm("events.emit_event")


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
        code = status.HTTP_200_OK if event.deduplicated else status.HTTP_201_CREATED
        return Response(EventSerializer(event).data, status=code)


class AuthTokenView(ObtainAuthToken):
    """Username and password for an API token, under the sign-in limit (``events.signin``).
    The body is the credentials: no other authentication is read (nor needed)."""

    authentication_classes = ()
    permission_classes = [permissions.AllowAny]
    serializer_class = SigninTokenSerializer
    refusals = {"post": (SigninThrottled,)}
