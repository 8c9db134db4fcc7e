"""Administration of deliveries: the log with its attempts, retry, and each target's log
(an endpoint's or an address's messages, with retry and replay)."""

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path

from channels_app.backends import get_backend
from core.admin import ApplicationErrors, ModelAdmin
from events.admin import priority_badge

from ..deliveries.manual import delivery_replay, delivery_retry
from ..models import Delivery, DeliveryAttempt
from ..selectors.deliveries import target_delivery_list


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


def target_label(delivery: Delivery) -> str:
    """How the log shows a delivery's receiver: a target that is the member itself (the
    bell's) by the member's name, any other in the channel's words."""
    if delivery.user_id and delivery.target == str(delivery.user_id):
        return delivery.user.get_username()
    backend = get_backend(delivery.channel)
    if backend is None:
        return delivery.target
    return backend.describe_target(delivery.target, delivery.target_data)


@admin.register(Delivery)
class DeliveryAdmin(ModelAdmin):
    list_display = ["created_at", "channel", "kind", "receiver", "event", "badge", "bucket",
                    "status", "decision", "attempts", "last_status_code"]
    list_filter = ["status", "channel", "kind", "bucket", "decision", "event__event_type"]
    search_fields = ["=id", "target", "=event__id"]
    list_select_related = ["event__event_type", "user"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    @admin.display(description="Receiver", ordering="target")
    def receiver(self, delivery):
        return target_label(delivery)

    @admin.display(description="Priority", ordering="priority")
    def badge(self, delivery):
        return priority_badge(delivery.priority)

    @admin.action(description="Retry the selected failed deliveries (same id)",
                  permissions=["retry"])
    def retry(self, request, queryset):
        retried = 0
        for delivery in queryset:
            with ApplicationErrors(self, request) as refusal:
                delivery_retry(delivery_id=delivery.pk)
            retried += refusal.error is None
        if retried:
            self.message_user(request, f"{retried} deliveries sent again.", messages.SUCCESS)

    def has_retry_permission(self, request):
        return request.user.has_perm("notifications.change_delivery")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    # --- one target's log ------------------------------------------------------------------

    def get_urls(self):
        return [
            path("target/<str:channel>/<path:target>/",
                 self.admin_site.admin_view(self.target_log_view),
                 name="notifications_delivery_target_log"),
            *super().get_urls(),
        ]

    def target_log_view(self, request, channel, target):
        """One target's sent messages, filterable by status, attempts inline; POST retries a
        failed one or replays any, under the same id."""
        backend = get_backend(channel)
        if backend is None or not self.has_view_permission(request):
            raise PermissionDenied
        can_resend = request.user.has_perm("notifications.change_delivery")
        if request.method == "POST":
            if not can_resend:
                raise PermissionDenied
            self._resend(request, request.POST.get("delivery", ""),
                         request.POST.get("action", ""))
            return HttpResponseRedirect(request.get_full_path())
        status = request.GET.get("status", "")
        if status not in Delivery.Status.values:
            status = ""
        page = Paginator(target_delivery_list(channel=channel, target=target, status=status),
                         50).get_page(request.GET.get("page"))
        described = backend.describe_target(target, None)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{backend.label} deliveries to {described}", "channel": backend,
            "target": target, "opts": self.model._meta, "page": page, "status": status,
            "statuses": Delivery.Status.values, "can_resend": can_resend,
        }
        return TemplateResponse(request, "admin/notifications/delivery/target_log.html",
                                context)

    def _resend(self, request, delivery_id: str, action: str) -> None:
        service = {"retry": delivery_retry, "replay": delivery_replay}.get(action)
        if service is None:
            self.message_user(request, f"Unknown action {action!r}.", messages.ERROR)
            return
        if not Delivery.objects.filter(pk=_uuid_or_none(delivery_id)).exists():
            self.message_user(request, "No such delivery.", messages.WARNING)
            return
        with ApplicationErrors(self, request) as refusal:
            service(delivery_id=delivery_id)
        if refusal.error is None:
            self.message_user(request, f"Delivery {delivery_id} is being sent again (same id).",
                              messages.SUCCESS)


def _uuid_or_none(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
