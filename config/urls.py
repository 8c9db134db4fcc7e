from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events.api.views import AuthTokenView

admin.site.site_header = "Datafi administration"
admin.site.site_title = "Datafi"
admin.site.index_title = "Administration"
admin.site.enable_nav_sidebar = False  # the event catalog's list needs the width

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/auth/token/", AuthTokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("events.api.urls")),
    path("api/", include("notifications.api.urls")),
    path("api/", include("channels_app.api.urls")),
]
