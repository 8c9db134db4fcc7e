from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import EventCreateView

router = SimpleRouter()

urlpatterns = [
    path("events/", EventCreateView.as_view(), name="event-create"),
    *router.urls,
]
