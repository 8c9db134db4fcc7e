"""The one error family, as the admin shows it (``core.rest`` is the same for REST)."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from .errors import NON_FIELD, ApplicationError


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
    """One line for a person: the message, each field named (unless the message names it)."""
    errors = error.errors or {error.field or NON_FIELD: [error.message]}
    return "; ".join(_named(name, " ".join(texts)) for name, texts in errors.items())


def _named(field: str, text: str) -> str:
    name = field.replace("_", " ")
    if field == NON_FIELD or name.lower() in text.lower():
        return text
    return f"{name}: {text}"


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


class ServiceDeletes:
    """For a ModelAdmin whose rows are deleted by a service: ``delete_one(obj)`` calls it,
    for the delete page and for the list's "Delete selected" alike (one at a time, so the
    service does its part for each)."""

    def delete_one(self, obj) -> None:
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete_one(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_one(obj)
