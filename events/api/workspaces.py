"""Staff REST for workspaces and their members: the same services as the commands."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from core.openapi import refuses
from events.exceptions import WorkspaceConflict
from events.models import Membership, Workspace
from events.services.workspaces import (
    membership_add,
    membership_remove,
    workspace_create,
    workspace_delete,
    workspace_update,
)

from .permissions import StaffModelPermissions
from .serializers import StrictFieldsMixin, WorkspaceIdField


class WorkspaceSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    workspace_id = WorkspaceIdField(
        source="public_id", required=False, max_length=40,
        help_text="Public id like 'ws_analytics'; generated when omitted. Cannot change later.",
    )

    class Meta:
        model = Workspace
        fields = ["workspace_id", "name", "created_at"]
        read_only_fields = ["created_at"]


class WorkspaceRenameSerializer(WorkspaceSerializer):
    """A workspace changes only its name: its id is read-only (other systems hold it)."""

    workspace_id = serializers.CharField(source="public_id", read_only=True)


class MemberSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    user_id = serializers.IntegerField(
        source="user.pk", read_only=True, help_text="What POST /api/events/ takes as recipients."
    )
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)

    class Meta:
        model = Membership
        fields = ["username", "user_id", "role", "joined_at"]
        read_only_fields = ["joined_at"]


class WorkspaceViewSet(viewsets.ModelViewSet):
    """Workspaces (staff with the workspace model permissions, as in the admin)."""

    serializer_class = WorkspaceSerializer
    permission_classes = [StaffModelPermissions]
    queryset = Workspace.objects.all()
    lookup_field = "public_id"
    lookup_url_kwarg = "workspace_id"

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return WorkspaceRenameSerializer
        return WorkspaceSerializer

    @refuses(WorkspaceConflict)
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        workspace = workspace_create(name=data["name"], workspace_id=data.get("public_id"))
        return Response(self.get_serializer(workspace).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        workspace = self.get_object()
        serializer = self.get_serializer(workspace, data=request.data,
                                         partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        workspace_update(workspace=workspace, name=data.get("name", workspace.name))
        return Response(self.get_serializer(workspace).data)

    def perform_destroy(self, instance):
        workspace_delete(workspace=instance)


class WorkspaceMemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             viewsets.GenericViewSet):
    """A workspace's members: list, add (POST), remove (DELETE .../{username}/)."""

    serializer_class = MemberSerializer
    permission_classes = [StaffModelPermissions]
    queryset = Membership.objects.select_related("user", "workspace")
    lookup_field = "user__username"
    lookup_url_kwarg = "username"

    def get_queryset(self):
        return super().get_queryset().filter(
            workspace__public_id=self.kwargs["workspace_id"]
        ).order_by("joined_at", "pk")

    def list(self, request, *args, **kwargs):
        self.workspace()  # 404 for an unknown workspace rather than an empty list
        return super().list(request, *args, **kwargs)

    def workspace(self) -> Workspace:
        return get_object_or_404(Workspace, public_id=self.kwargs["workspace_id"])

    @extend_schema(responses={201: MemberSerializer})
    @refuses(WorkspaceConflict)
    def create(self, request, workspace_id=None):
        workspace = self.workspace()  # 404 for an unknown workspace, whatever the body
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            membership = membership_add(workspace=workspace,
                                        username=data["user"]["username"], role=data["role"])
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, workspace_id=None, username=None):
        membership = self.get_object()  # 404 for an unknown workspace or a non-member
        membership_remove(workspace=membership.workspace, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)
