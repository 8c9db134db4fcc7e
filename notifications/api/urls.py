from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import NotificationViewSet, RoutingExportView, RoutingImportView, RoutingRuleViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("routing-rules", RoutingRuleViewSet, basename="routing-rule")

urlpatterns = [
    path("routing/export/", RoutingExportView.as_view(), name="routing-export"),
    path("routing/import/", RoutingImportView.as_view(), name="routing-import"),
    *router.urls,
]
