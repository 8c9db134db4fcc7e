from django.contrib.admin.apps import AdminConfig


class DatafiAdminConfig(AdminConfig):
    default_site = "config.admin.DatafiAdminSite"
