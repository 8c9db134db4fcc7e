"""Administration > Events > Email settings: one record, tested before or after Save."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from core.admin import ModelAdmin

from ..models import SECRET_MAX_LENGTH, EmailSettings
from ..services import email as services


class NewPasswordField(forms.CharField):
    """A password typed to replace the stored one; blank keeps it. Never rendered back."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def has_changed(self, initial, data):
        return bool(data)


class EmailSettingsForm(forms.ModelForm):
    """The model's validation applies as it is (``EmailSettings.clean``: enabling needs a
    host, a port and a from address, each named on its field)."""

    password = NewPasswordField(required=False, strip=False, max_length=SECRET_MAX_LENGTH)

    class Meta:
        model = EmailSettings
        fields = ["host", "port", "encryption", "username", "password", "from_email",
                  "from_name", "timeout", "enabled"]


@admin.register(EmailSettings)
class EmailSettingsAdmin(ModelAdmin):
    """Administration > Events > Email settings: one record, tested before or after Save."""

    admin_section = "events"  # listed with the catalog it delivers (config/admin.py)
    form = EmailSettingsForm
    fieldsets = [
        ("Server", {"fields": ["host", "port", "encryption", "timeout"]}),
        ("Login", {"fields": ["username", "password"]}),
        ("Sender", {"fields": ["from_email", "from_name"]}),
        (None, {"fields": ["enabled"]}),
    ]
    TEST_ACTIONS = ("_test_connection", "_send_test_email")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        settings = services.email_settings_get()
        return redirect(reverse("admin:channels_app_emailsettings_change", args=[settings.pk]))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        state = "set" if obj is not None and obj.password else "not set"
        form.base_fields["password"].help_text = (
            f"Password: <strong>{state}</strong>. Stored encrypted and never shown; leave "
            "empty to keep it, type a new one to replace it.")
        return form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        stored = services.email_settings_get()
        extra_context = {**(extra_context or {}), "title": "Email settings"}
        action = next((a for a in self.TEST_ACTIONS if a in request.POST), None)
        if request.method == "POST" and action and object_id:
            return self._test_view(request, object_id, action, extra_context)
        if request.method == "GET":
            if not stored.enabled:
                extra_context["email_disabled"] = True
            elif stored.missing_settings:
                extra_context["email_incomplete"] = ", ".join(
                    str(EmailSettings._meta.get_field(name).verbose_name)
                    for name in stored.missing_settings)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        services.email_settings_update(values=form.cleaned_data)

    def _test_view(self, request, object_id, action, extra_context):
        """Test the values in the form (saved or not), say how it went, show the form again."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            raise PermissionDenied
        fieldsets = self.get_fieldsets(request, obj)
        form = self.get_form(request, obj, change=True, fields=flatten_fieldsets(fieldsets))(
            request.POST, instance=EmailSettings.objects.get(pk=obj.pk))
        if form.is_valid():
            overrides = {name: form.cleaned_data[name] for name in services.EMAIL_SETTINGS_FIELDS
                         if name in form.cleaned_data}
            if action == "_test_connection":
                result, done = services.email_test_connection(overrides=overrides), (
                    "Test Connection succeeded.")
            else:
                to = request.POST.get("_test_to", "").strip() or request.user.email
                result, done = services.email_send_test(to=to, overrides=overrides), (
                    f"Test email sent to {to}.")
            if result.ok:
                self.message_user(request, done, messages.SUCCESS)
            else:
                self.message_user(request, f"{result.error}: {result.detail}", messages.ERROR)
        admin_form = helpers.AdminForm(form, list(fieldsets), {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "subtitle": str(obj), "adminform": admin_form, "object_id": object_id,
            "original": obj, "is_popup": False, "to_field": None,
            "media": self.media + admin_form.media, "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "test_to": request.POST.get("_test_to", ""),
            **extra_context,
        }
        return self.render_change_form(request, context, change=True, obj=obj)
