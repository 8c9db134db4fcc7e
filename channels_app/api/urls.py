from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    DigestSettingViewSet,
    EmailSendTestView,
    EmailSettingsView,
    EmailTestConnectionView,
    WebhookEndpointViewSet,
)

router = SimpleRouter()
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("digest-settings", DigestSettingViewSet, basename="digest-setting")

urlpatterns = [
    path("email-settings/", EmailSettingsView.as_view(), name="email-settings"),
    path("email-settings/test-connection/", EmailTestConnectionView.as_view(),
         name="email-settings-test-connection"),
    path("email-settings/send-test-email/", EmailSendTestView.as_view(),
         name="email-settings-send-test-email"),
    *router.urls,
]
