"""Administration > Events > Webhook endpoints: the endpoints with their delivery health
(kept on the endpoint by its sends), "Send test event", and a link to the endpoint's delivery
log (the deliveries' admin, ``notifications_delivery_target_log``)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin import ModelAdmin, ServiceDeletes
from events.models import Category, EventType

from ..backends.webhook import WEBHOOK_CHANNEL
from ..models import ROUTING_KEY_MAX_LENGTH, SECRET_MAX_LENGTH, WebhookEndpoint
from ..services.webhooks import (
    webhook_endpoint_delete,
    webhook_endpoint_save,
    webhook_endpoint_test,
)
from .email import NewPasswordField


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https",
                         help_text="https only; private and internal addresses are refused.")
    secret = NewPasswordField(
        required=False, strip=False, max_length=SECRET_MAX_LENGTH,
        help_text="Signs every request. Stored encrypted and never shown; leave empty to keep "
                  "it, type a new one to replace it.")
    clear_secret = forms.BooleanField(required=False, label="Remove the secret")
    routing_key = NewPasswordField(
        required=False, max_length=ROUTING_KEY_MAX_LENGTH,
        help_text="PagerDuty integration key (PagerDuty format only). Leave empty to keep the "
                  "stored one.")
    categories = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every category.")
    event_types = forms.MultipleChoiceField(
        required=False, widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="None selected: every event type (of the ticked categories).")

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "is_active", "format", "max_retries", "workspace",
                  "categories", "event_types"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["categories"].choices = list(Category.objects.values_list("slug", "name"))
        self.fields["event_types"].choices = [
            (key, key) for key in EventType.objects.values_list("key", flat=True)]

    def clean(self):
        data = super().clean()
        # The model's own validation (run next) sees what will be stored.
        if data.get("routing_key"):
            self.instance.routing_key = data["routing_key"]
        return data

    def service_values(self) -> dict:
        values = {name: self.cleaned_data[name] for name in self.Meta.fields
                  if name in self.cleaned_data}
        values["secret"] = None if self.cleaned_data.get("clear_secret") else (
            self.cleaned_data.get("secret") or "")
        values["routing_key"] = self.cleaned_data.get("routing_key") or ""
        return values


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceDeletes, ModelAdmin):
    admin_section = "events"  # listed with the catalog it delivers (config/admin.py)
    form = WebhookEndpointForm
    list_display = ["name", "url", "format", "is_active", "last_delivery",
                    "success_rate", "consecutive_failures", "log_link"]
    list_filter = ["is_active", "format"]
    search_fields = ["name", "url"]
    readonly_fields = ["secret_state", "consecutive_failures", "last_delivery_status",
                       "last_delivery_at", "deactivated_reason", "deactivated_at"]
    change_form_template = "admin/channels_app/webhookendpoint/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "url", "is_active", "format", "max_retries"]}),
        ("Secrets", {"fields": ["secret_state", "secret", "clear_secret", "routing_key"]}),
        ("Filters (empty: everything routed to the webhook channel)",
         {"fields": ["categories", "event_types", "workspace"]}),
        ("Health", {"fields": ["last_delivery_status", "last_delivery_at",
                               "consecutive_failures", "deactivated_reason", "deactivated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workspace")

    @admin.display(description="Secret")
    def secret_state(self, endpoint):
        return "set" if endpoint.secret else "not set"

    @admin.display(description="Last delivery", ordering="last_delivery_at")
    def last_delivery(self, endpoint):
        status = endpoint.last_delivery_status
        if not status:
            return "-"
        # colored by .delivery-status-<status> in web/admin.css
        return format_html("<span class='delivery-status-{}'>{}</span>", status, status)

    @admin.display(description="Success (last 100)")
    def success_rate(self, endpoint):
        rate = endpoint.recent_success_rate
        if rate is None:
            return "-"
        return f"{100 * rate:.0f}% of {len(endpoint.recent_outcomes)}"

    @admin.display(description="Deliveries")
    def log_link(self, endpoint):
        url = reverse("admin:notifications_delivery_target_log",
                      args=[WEBHOOK_CHANNEL, endpoint.pk])
        return format_html('<a href="{}">log</a>', url)

    def save_model(self, request, obj, form, change):
        stored = WebhookEndpoint.objects.get(pk=obj.pk) if change else None
        saved = webhook_endpoint_save(values=form.service_values(), endpoint=stored)
        obj.pk = saved.pk

    def delete_one(self, obj):
        webhook_endpoint_delete(endpoint=obj)

    def get_urls(self):
        return [
            path("<int:endpoint_id>/test/", self.admin_site.admin_view(self.test_view),
                 name="channels_app_webhookendpoint_test"),
            *super().get_urls(),
        ]

    def test_view(self, request, endpoint_id):
        """Send a signed sample event now and show the receiver's answer."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None or not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        result = webhook_endpoint_test(endpoint=endpoint)
        if result.ok:
            answer = f" Response: {result.response[:300]}" if result.response else ""
            self.message_user(request, f"Test event delivered: HTTP {result.status_code} in "
                                       f"{result.duration_ms} ms.{answer}", messages.SUCCESS)
        else:
            code = f"HTTP {result.status_code}: " if result.status_code else ""
            self.message_user(request, f"Test event failed after {result.duration_ms} ms: "
                                       f"{code}{result.error}", messages.ERROR)
        return HttpResponseRedirect(
            reverse("admin:channels_app_webhookendpoint_change", args=[endpoint.pk]))
