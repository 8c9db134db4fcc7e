"""Administration of attention controls: silences (Alertmanager's), members' mutes and quiet
hours (for support), and the routing explanation on an event's page."""

import json

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from core.admin import ApplicationErrors, ModelAdmin

from ..models import Mute, Silence, UserNotificationSettings
from ..services.attention import silence_expire, silence_save


class SilenceState(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("upcoming", "Upcoming"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(starts_at__lte=now, ends_at__gt=now)
        if self.value() == "upcoming":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(ends_at__lte=now)
        return queryset


class SilenceForm(forms.ModelForm):
    matchers = forms.JSONField(
        help_text='Any of "event_type" (a key), "category" (a slug), "workspace_id" and '
                  '"payload" ({"key": "value"}); all given must match. E.g. '
                  '{"event_type": "data_source.connection_lost", "payload": '
                  '{"datasource_name": "Staging"}}.')
    starts_at = forms.DateTimeField(required=False, help_text="Empty: now.")

    class Meta:
        model = Silence
        fields = ["matchers", "starts_at", "ends_at", "comment"]


@admin.register(Silence)
class SilenceAdmin(ModelAdmin):
    form = SilenceForm
    list_display = ["pk", "matcher_text", "starts_at", "ends_at", "state", "created_by",
                    "comment"]
    list_filter = [SilenceState]
    search_fields = ["comment"]
    list_select_related = ["created_by"]
    readonly_fields = ["created_by", "created_at"]
    actions = ["expire_now"]

    @admin.display(description="Matchers")
    def matcher_text(self, silence):
        return json.dumps(silence.matchers, sort_keys=True)

    @admin.display(description="State")
    def state(self, silence):
        now = timezone.now()
        if silence.ends_at <= now:
            return "expired"
        return "active" if silence.starts_at <= now else "upcoming"

    def save_model(self, request, obj, form, change):
        saved = silence_save(values=form.cleaned_data, created_by=request.user,
                             silence=Silence.objects.get(pk=obj.pk) if change else None)
        obj.pk = saved.pk

    @admin.action(description="Expire the selected silences now", permissions=["expire"])
    def expire_now(self, request, queryset):
        expired = 0
        for silence in queryset:
            with ApplicationErrors(self, request) as refusal:
                silence_expire(silence=silence)
            expired += refusal.error is None
        if expired:
            self.message_user(request, f"{expired} silences expired.", messages.SUCCESS)

    def has_expire_permission(self, request):
        return request.user.has_perm("notifications.expire_silence")


@admin.register(Mute)
class MuteAdmin(ModelAdmin):
    """Members' own mutes, for support (they manage them from the bell and the preferences
    page)."""

    list_display = ["user", "event_type", "category", "workspace", "until", "created_at"]
    list_filter = ["category"]
    search_fields = ["user__username"]
    list_select_related = ["user", "event_type", "category", "workspace"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request):
        return False


@admin.register(UserNotificationSettings)
class UserNotificationSettingsAdmin(ModelAdmin):
    """Members' time zones and quiet hours, for support."""

    list_display = ["user", "timezone", "quiet_start", "quiet_end", "updated_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
