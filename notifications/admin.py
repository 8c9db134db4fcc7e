from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from channels_app.models import Channel
from events.admin import EventTypeAdmin, priority_badge
from events.exceptions import BrokerUnavailable
from events.models import EventType

from .delivery import DeliveryNotRetryable, delivery_retry
from .models import (
    Bucket,
    Delivery,
    DeliveryAttempt,
    Digest,
    Notification,
    NotificationPreference,
    RoutingRule,
)
from .routing_files import RoutingFileError, routing_export, routing_import
from .selectors import RoutingRules, pending_digest_counts
from .services import digest_flush_enqueue, routing_rule_delete, routing_rule_set


class EmailListField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class RoutingRuleForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        choices=Channel.choices, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one channel."},
        help_text="Email goes to the audience (and the lists below); webhook goes to every "
                  "active webhook endpoint whose filters match.",
    )
    extra_emails = EmailListField(
        required=False, help_text="Distribution lists for the email channel, one per line."
    )

    class Meta:
        model = RoutingRule
        fields = ["category", "event_type", "channels", "extra_emails"]


class RoutingImportForm(forms.Form):
    file = forms.FileField(help_text="A routing YAML file, as printed by Export.")
    replace = forms.BooleanField(
        required=False, help_text="Remove rules and priority overrides the file does not mention."
    )


# The event catalog, with the channels each event type reaches (routing lives here, above
# events, which knows nothing of it).
admin.site.unregister(EventType)


@admin.register(EventType)
class RoutedEventTypeAdmin(EventTypeAdmin):
    def get_list_display(self, request):
        rules = RoutingRules()  # one query for the whole page

        @admin.display(description="Effective channels")
        def effective_channels(event_type):
            if not event_type.enabled:
                return format_html("<span class='quiet'>{}</span>",
                                   "none: notifications disabled (events are only logged)")
            routing = rules.resolve(event_type)
            lists = routing.rule.extra_emails if routing.rule else []
            extra = f" + {', '.join(lists)}" if lists else ""
            return format_html("{}{} <small class='quiet'>({})</small>",
                               ", ".join(routing.channels), extra, routing.source_label)

        return [*super().get_list_display(request), effective_channels]


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ["__str__", "category", "event_type", "channel_list", "updated_at"]
    list_select_related = ["category", "event_type"]
    list_filter = ["category"]
    autocomplete_fields = ["event_type"]
    change_list_template = "admin/notifications/routingrule/change_list.html"

    @admin.display(description="Channels")
    def channel_list(self, rule):
        return ", ".join(rule.channels)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        routing_rule_set(rule=obj, category=data.get("category"),
                         event_type=data.get("event_type"), channels=data["channels"],
                         extra_emails=data.get("extra_emails", []))

    def delete_model(self, request, obj):
        routing_rule_delete(rule=obj)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            routing_rule_delete(rule=rule)

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
                # Bytes, one past the size limit at most: the import checks size and UTF-8.
                limit = settings.DATAFI_MAX_ROUTING_FILE_BYTES
                text = form.cleaned_data["file"].read(limit + 1)
                result = routing_import(text, replace=form.cleaned_data["replace"])
            except RoutingFileError as exc:
                form.add_error("file", f"{exc}. Nothing was changed.")
            else:
                self.message_user(request, result.summary(), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:notifications_routingrule_changelist"))
        context = {**self.admin_site.each_context(request), "form": form,
                   "opts": self.model._meta, "title": "Import routing file"}
        return TemplateResponse(request, "admin/notifications/routing_import.html", context)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "badge", "title", "read_at"]
    list_filter = ["kind", "priority", "category"]
    search_fields = ["title", "user__username", "event_type_key"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    @admin.display(description="Priority", ordering="priority")
    def badge(self, notification):
        return priority_badge(notification.priority)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """Members' per-category choices (``/api/preferences/`` and the preferences page), for
    support: see why someone gets no email, or switch a channel back on for them. Routing
    reads them on every route, so a change here applies to the next event. Critical events
    are delivered whatever is chosen."""

    list_display = ["user", "category", "channel", "enabled", "updated_at"]
    list_filter = ["channel", "enabled", "category"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "category"]
    raw_id_fields = ["user"]
    ordering = ["user__username", "category__position", "channel"]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "duration_ms", "outcome", "status_code", "error",
              "response"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "kind", "target", "event", "badge", "bucket",
                    "status", "attempts", "last_status_code"]
    list_filter = ["status", "channel", "kind", "bucket", "event__event_type"]
    search_fields = ["=id", "address", "=event__id"]
    list_select_related = ["event__event_type", "user"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    @admin.display(description="Priority", ordering="priority")
    def badge(self, delivery):
        return priority_badge(delivery.priority)

    @admin.action(description="Retry the selected failed deliveries (same id)",
                  permissions=["retry"])
    def retry(self, request, queryset):
        retried, refused = 0, []
        for delivery in queryset:
            try:
                delivery_retry(delivery_id=delivery.pk)
                retried += 1
            except DeliveryNotRetryable as exc:
                refused.append(f"{delivery.pk}: {exc}")
        if retried:
            self.message_user(request, f"{retried} deliveries sent again.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    def has_retry_permission(self, request):
        return request.user.has_perm("notifications.change_delivery")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    """Sent and in-flight digests, the pending items per bucket, and Flush now."""

    list_display = ["created_at", "channel", "bucket", "user", "address", "item_count", "status",
                    "sent_at"]
    list_filter = ["status", "channel", "bucket"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Digest._meta.fields]
    change_list_template = "admin/notifications/digest/change_list.html"

    def get_urls(self):
        return [
            path("flush/", self.admin_site.admin_view(self.flush_view),
                 name="notifications_digest_flush"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        counts = pending_digest_counts()
        buckets = [
            {
                "value": bucket.value,
                "label": bucket.label,
                "channels": [(channel.label, counts.get((bucket.value, channel.value), 0))
                             for channel in Channel],
                "total": sum(counts.get((bucket.value, c.value), 0) for c in Channel),
            }
            for bucket in Bucket
        ]
        context = {**(extra_context or {}), "buckets": buckets,
                   "can_flush": request.user.has_perm("notifications.flush_digests")}
        return super().changelist_view(request, context)

    def flush_view(self, request):
        if request.method != "POST":
            return HttpResponse(status=405)
        if not request.user.has_perm("notifications.flush_digests"):
            return HttpResponse(status=403)
        bucket = request.POST.get("bucket", "")
        if bucket not in Bucket.values:
            self.message_user(request, f"Unknown bucket {bucket!r}.", messages.ERROR)
        else:
            try:
                digest_flush_enqueue(bucket=bucket)
            except BrokerUnavailable as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Flush of {bucket} queued: the digests are sent in a moment.",
                    messages.SUCCESS,
                )
        return HttpResponseRedirect(reverse("admin:notifications_digest_changelist"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

from . import admin_webhooks  # noqa: E402,F401  (webhook endpoints, listed under Events)
