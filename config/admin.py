"""The admin site: Django's, with models listed under the section their ModelAdmin names."""

from django.contrib import admin

from events.forms import AdminSigninForm, signin_page_response


class DatafiAdminSite(admin.AdminSite):
    """A ModelAdmin with ``admin_section = "<app_label>"`` is listed in that app's section
    of the index (e.g. the email settings of ``channels_app`` under "Events").

    Its sign-in page is under the sign-in limit (``events.signin``), like the app's.
    """

    login_form = AdminSigninForm

    def login(self, request, extra_context=None):
        return signin_page_response(super().login(request, extra_context))

    def get_app_list(self, request, app_label=None):
        app_dict = self._build_app_dict(request)
        for label, app in list(app_dict.items()):
            for entry in list(app["models"]):
                section = getattr(self._registry.get(entry["model"]), "admin_section", None)
                if section and section != label and section in app_dict:
                    app["models"].remove(entry)
                    app_dict[section]["models"].append(entry)
            if not app["models"]:
                del app_dict[label]
        if app_label:
            app_dict = {label: app for label, app in app_dict.items() if label == app_label}
        app_list = sorted(app_dict.values(), key=lambda app: app["name"].lower())
        for app in app_list:
            app["models"].sort(key=lambda entry: entry["name"])
        return app_list
