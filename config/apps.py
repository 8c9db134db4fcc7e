from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class DatafiAdminConfig(AdminConfig):
    default_site = "config.admin.DatafiAdminSite"


class ConfigConfig(AppConfig):
    """The project's own glue as an app: the control plane's command (``sync_schedule``)."""

    name = "config"
    verbose_name = "Configuration"
