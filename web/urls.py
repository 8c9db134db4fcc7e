from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("notifications/", views.NotificationCenterView.as_view(), name="notification-center"),
    path("notifications/<int:pk>/", views.NotificationDetailView.as_view(),
         name="notification-detail"),
    path("preferences/", views.PreferencesView.as_view(), name="preferences-page"),
    path("priority-colors.css", views.priority_colors_css, name="priority-colors-css"),
    path("accounts/login/", views.SigninView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
