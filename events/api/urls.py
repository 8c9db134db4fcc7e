from django.urls import path
from rest_framework.routers import SimpleRouter

from .catalog import EventTypeViewSet
from .views import EventCreateView
from .workspaces import WorkspaceMemberViewSet, WorkspaceViewSet

router = SimpleRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("event-types", EventTypeViewSet, basename="event-type")

urlpatterns = [
    path("events/", EventCreateView.as_view(), name="event-create"),
    path("workspaces/<str:workspace_id>/members/",
         WorkspaceMemberViewSet.as_view({"get": "list", "post": "create"}),
         name="workspace-member-list"),
    path("workspaces/<str:workspace_id>/members/<str:username>/",
         WorkspaceMemberViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
         name="workspace-member-detail"),
    *router.urls,
]
