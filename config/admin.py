"""The admin site: Django's, with models listed under the section their ModelAdmin names;
and how the admin shows the one error family."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from core.errors import NON_FIELD, ApplicationError


class DatafiAdminSite(admin.AdminSite):
    """A ModelAdmin with ``admin_section = "<app_label>"`` is listed in that app's section
    of the index (e.g. the email settings of ``channels_app`` under "Events")."""

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


# --- the one error family, as the admin shows it -----------------------------------------

class ApplicationErrors:
    """A service's refusal (``core.errors.ApplicationError``), shown in the admin the one
    way: as an error message on the page the admin was on, the fields named.

    ``with ApplicationErrors(modeladmin, request):`` around a service call in an action or
    a custom view; ``ModelAdmin`` below applies it to saves and deletes too.
    """

    def __init__(self, modeladmin, request):
        self.modeladmin, self.request = modeladmin, request
        self.error: ApplicationError | None = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if not isinstance(error, ApplicationError):
            return False
        self.error = error
        self.modeladmin.message_user(self.request, error_text(error), messages.ERROR)
        return True


def error_text(error: ApplicationError) -> str:
    """One line for a person: the message, or each field with its messages."""
    if error.errors:
        return "; ".join(f"{name.replace('_', ' ')}: {' '.join(texts)}"
                         for name, texts in error.errors.items())
    if error.field and error.field != NON_FIELD:
        return f"{error.field.replace('_', ' ')}: {error.message}"
    return error.message


class ModelAdmin(admin.ModelAdmin):
    """The project's ModelAdmin: a service refusing a save or a delete does not answer a 500
    but shows why, on the same page (nothing was written: services are all or nothing)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with ApplicationErrors(self, request) as refusal:
            return super().changeform_view(request, object_id, form_url, extra_context)
        return HttpResponseRedirect(request.get_full_path()) if refusal.error else None

    def delete_view(self, request, object_id, extra_context=None):
        with ApplicationErrors(self, request) as refusal:
            return super().delete_view(request, object_id, extra_context)
        return HttpResponseRedirect(request.get_full_path()) if refusal.error else None
