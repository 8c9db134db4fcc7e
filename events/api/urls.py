from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import EventCreateView, EventTypeViewSet

router = SimpleRouter()
router.register("event-types", EventTypeViewSet, basename="event-type")

urlpatterns = [
    path("events/", EventCreateView.as_view(), name="event-create"),
    *router.urls,
]
