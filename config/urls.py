from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.security import csp_report
from events.ack_links import PATH_PREFIX as ACKNOWLEDGE_PATH
from events.api.views import AuthTokenView
from notifications.acknowledge_page import acknowledge_page

admin.site.site_header = "Datafi administration"
admin.site.site_title = "Datafi"
admin.site.index_title = "Administration"
admin.site.enable_nav_sidebar = False  # the event catalog's list needs the width

# Under /api/ a 404 or 500 of Django's own (a URL no route matches) is JSON, as the API's.
handler404 = "core.rest.not_found"
handler500 = "core.rest.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", AuthTokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI; its start script is /api/docs/?script (the CSP allows no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
         name="api-docs"),
    path(settings.CSP_REPORT_PATH.lstrip("/"), csp_report, name="csp-report"),
    path("api/", include("events.api.urls")),
    path("api/", include("notifications.api.urls")),
    path("api/", include("channels_app.api.urls")),
    # A critical or high email's signed Acknowledge link (a GET confirms, the POST acts).
    path(f"{ACKNOWLEDGE_PATH}<str:token>/", acknowledge_page, name="acknowledge-link"),
    path("", include("web.urls")),  # the app's pages: the bell, notifications, preferences
]
