"""Administration of routing: rules (with the routing file's import and export)."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from channels_app.backends import registered_backends
from core.admin import ModelAdmin, ServiceDeletes
from core.errors import ApplicationError

from ..models import RoutingRule
from ..models.routing import ESCALATION_MAX_MINUTES
from ..routing.files import (
    INHIBIT_PERMISSIONS,
    routing_export,
    routing_file_read,
    routing_import,
)
from ..services.rules import routing_rule_delete, routing_rule_set


class EmailListField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class RoutingRuleForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one channel."},
        help_text="Email goes to the audience (and the lists below); webhook goes to every "
                  "active webhook endpoint whose filters match.",
    )
    extra_emails = EmailListField(
        required=False, help_text="Distribution lists for the email channel, one per line."
    )
    escalate_after_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=ESCALATION_MAX_MINUTES,
        label="Escalate after (minutes)",
        help_text="Critical and high events nobody acknowledges within this many minutes go "
                  "out again, marked \"Escalated:\". Empty: no escalation.")
    escalate_channels = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Escalate on",
        help_text="Email: the members' addresses and the addresses below; webhook: every "
                  "matching endpoint.")
    escalate_emails = EmailListField(required=False, label="Escalation addresses",
                                     help_text="Addresses that also get the escalation.")

    class Meta:
        model = RoutingRule
        fields = ["category", "event_type", "channels", "extra_emails", "notify_resolved"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = [(b.name, b.label) for b in registered_backends()]
        self.fields["escalate_channels"].choices = [
            (b.name, b.label) for b in registered_backends() if b.external]
        escalate = self.instance.escalate if self.instance.pk else None
        if escalate:
            self.initial.update(escalate_after_minutes=escalate["after_minutes"],
                                escalate_channels=escalate["channels"],
                                escalate_emails=escalate.get("emails", []))

    def escalation(self):
        """The ``escalate`` the three fields describe (None: none)."""
        data = self.cleaned_data
        if data.get("escalate_after_minutes") is None:
            if data.get("escalate_channels") or data.get("escalate_emails"):
                raise ApplicationError("Say after how many minutes to escalate.",
                                       field="escalate_after_minutes")
            return None
        return {"after_minutes": data["escalate_after_minutes"],
                "channels": list(data.get("escalate_channels") or []),
                "emails": list(data.get("escalate_emails") or [])}


class RoutingImportForm(forms.Form):
    file = forms.FileField(help_text="A routing YAML file, as printed by Export.")
    replace = forms.BooleanField(
        required=False, help_text="Remove rules and priority overrides the file does not mention."
    )


@admin.register(RoutingRule)
class RoutingRuleAdmin(ServiceDeletes, ModelAdmin):
    form = RoutingRuleForm
    list_display = ["__str__", "category", "event_type", "channel_list", "escalation",
                    "updated_at"]
    list_select_related = ["category", "event_type"]
    list_filter = ["category"]
    autocomplete_fields = ["event_type"]
    change_list_template = "admin/notifications/routingrule/change_list.html"

    @admin.display(description="Channels")
    def channel_list(self, rule):
        return ", ".join(rule.channels)

    @admin.display(description="Escalation")
    def escalation(self, rule):
        if not rule.escalate:
            return "-"
        return f"after {rule.escalate['after_minutes']} min: {', '.join(rule.escalate['channels'])}"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        routing_rule_set(rule=obj, category=data.get("category"),
                         event_type=data.get("event_type"), channels=data["channels"],
                         extra_emails=data.get("extra_emails", []),
                         escalate=form.escalation(),
                         notify_resolved=bool(data.get("notify_resolved")))

    def delete_one(self, obj):
        routing_rule_delete(rule=obj)

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view),
                 name="notifications_routingrule_import"),
            path("export/", self.admin_site.admin_view(self.export_view),
                 name="notifications_routingrule_export"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        response = HttpResponse(routing_export(), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="routing.yaml"'
        return response

    def import_view(self, request):
        # An import adds, changes (and with replace deletes) rules and sets priority overrides.
        needed = ("notifications.add_routingrule", "notifications.change_routingrule",
                  "notifications.delete_routingrule", "events.change_eventtype")
        if not request.user.has_perms(needed):
            return HttpResponse(status=403)
        form = RoutingImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = routing_import(
                    routing_file_read(form.cleaned_data["file"]),
                    replace=form.cleaned_data["replace"],
                    inhibit_allowed=request.user.has_perms(INHIBIT_PERMISSIONS))
            except ApplicationError as exc:  # the file's error, shown on the file field
                form.add_error("file", f"{exc.message}. Nothing was changed.")
            else:
                self.message_user(request, result.summary(), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:notifications_routingrule_changelist"))
        context = {**self.admin_site.each_context(request), "form": form,
                   "opts": self.model._meta, "title": "Import routing file"}
        return TemplateResponse(request, "admin/notifications/routing_import.html", context)
