from django.apps import AppConfig


class WebConfig(AppConfig):
    """The app's pages: the bell, the notification center, a notification, preferences."""

    name = "web"
    verbose_name = "Web app"
