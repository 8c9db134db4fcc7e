"""Administration of the bell's notifications (read-only) and of members' preferences."""

from django.contrib import admin

from core.admin import ModelAdmin
from events.admin import priority_badge

from ..models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(ModelAdmin):
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
class NotificationPreferenceAdmin(ModelAdmin):
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
