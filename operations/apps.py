from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Operating the service: health and readiness, Prometheus metrics, the admin's Overview,
    ``manage.py status``. On top of the other apps; none of them imports it."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from . import signals

        signals.connect()
