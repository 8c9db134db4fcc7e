from django.urls import path
from rest_framework.routers import SimpleRouter

from .attention import EventExplainView, MuteViewSet, RoutingExplainView, SilenceViewSet
from .incidents import EventResolveView, InhibitRuleViewSet
from .views import (
    DeliveryViewSet,
    DigestFlushView,
    DigestPendingView,
    NotificationViewSet,
    PreferencesView,
    RoutingExportView,
    RoutingImportView,
    RoutingRuleViewSet,
)

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("routing-rules", RoutingRuleViewSet, basename="routing-rule")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("mutes", MuteViewSet, basename="mute")
router.register("silences", SilenceViewSet, basename="silence")
router.register("inhibit-rules", InhibitRuleViewSet, basename="inhibit-rule")

urlpatterns = [
    path("routing/export/", RoutingExportView.as_view(), name="routing-export"),
    path("routing/import/", RoutingImportView.as_view(), name="routing-import"),
    path("digests/pending/", DigestPendingView.as_view(), name="digest-pending"),
    path("digests/flush/", DigestFlushView.as_view(), name="digest-flush"),
    path("preferences/", PreferencesView.as_view(), name="preferences"),
    path("routing/explain/", RoutingExplainView.as_view(), name="routing-explain"),
    path("events/<uuid:event_id>/explain/", EventExplainView.as_view(), name="event-explain"),
    path("events/<uuid:event_id>/resolve/", EventResolveView.as_view(), name="event-resolve"),
    *router.urls,
]
