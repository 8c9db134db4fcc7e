from django import forms
from django.contrib import admin
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenProxy

from core.admin import ModelAdmin

from .models import Category, Event, EventType, Membership, Workspace
from .routing_view import explain_event, routing_describer
from .services.catalog import event_type_create, event_type_update


def priority_badge(priority: str):
    """The priority as a badge in its color (``.priority-badge`` in web/admin.css, the color
    by ``data-priority`` from /priority-colors.css: no style attribute, which the CSP refuses)."""
    return format_html('<span class="priority-badge" data-priority="{}">{}</span>',
                       priority, priority)


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    list_display = ["name", "slug", "prefix", "position"]
    ordering = ["position"]

    def has_delete_permission(self, request, obj=None):
        return False


class EventTypeForm(forms.ModelForm):
    """Grouping and resolution left out of a post (a script's) keep their defaults: off, 60
    minutes, none."""

    class Meta:
        model = EventType
        fields = ["category", "name", "label", "description", "title_template",
                  "default_priority", "priority_override", "enabled", "group_by",
                  "repeat_interval_minutes", "resolves"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("group_by", "repeat_interval_minutes", "resolves"):
            if name in self.fields:
                self.fields[name].required = False

    def clean_repeat_interval_minutes(self):
        value = self.cleaned_data.get("repeat_interval_minutes")
        return EventType._meta.get_field("repeat_interval_minutes").default if value is None \
            else value

    def clean_group_by(self):
        value = self.cleaned_data.get("group_by")
        return [] if value is None else value

    def clean_resolves(self):
        value = self.cleaned_data.get("resolves")
        return [] if value is None else value


@admin.register(EventType)
class EventTypeAdmin(ModelAdmin):
    """The event catalog: toggle and re-prioritise in the list, one Save for all rows; the
    channels each event type reaches as the routing app describes them."""

    form = EventTypeForm
    list_display = ["key", "category", "badge", "priority_override", "enabled"]
    list_editable = ["priority_override", "enabled"]
    list_filter = ["category", "enabled", "default_priority"]
    search_fields = ["key", "label", "description"]
    list_select_related = ["category"]
    list_per_page = 100
    readonly_fields = ["key", "builtin"]
    fields = ["key", "category", "name", "label", "description", "title_template",
              "default_priority", "priority_override", "enabled", "group_by",
              "repeat_interval_minutes", "resolves", "builtin"]

    def save_model(self, request, obj, form, change):
        """Through the services, the list's editable columns included."""
        if change:
            event_type_update(event_type=obj,
                              **{name: form.cleaned_data[name] for name in form.changed_data})
        else:
            created = event_type_create(**{name: form.cleaned_data[name] for name in form.fields})
            obj.pk, obj.key = created.pk, created.key  # the admin logs and redirects with obj
            obj._state.adding = False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.builtin:
            return ["key", "category", "name", "label", "description", "title_template",
                    "default_priority", "builtin"]
        return self.readonly_fields

    @admin.display(description="Effective priority", ordering="default_priority")
    def badge(self, event_type):
        if event_type.effective_priority == event_type.default_priority:
            return priority_badge(event_type.effective_priority)
        return format_html("{} <small class='quiet'>default {}</small>",
                           priority_badge(event_type.effective_priority),
                           event_type.default_priority)

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.builtin

    def get_list_display(self, request):
        describe = routing_describer()  # loaded once for the whole page

        @admin.display(description="Effective channels")
        def effective_channels(event_type):
            if not event_type.enabled:
                return format_html("<span class='quiet'>{}</span>",
                                   "none: notifications disabled (events are only logged)")
            routing = describe(event_type)
            if routing is None:
                return "-"
            lists = routing.extra_emails
            extra = f" + {', '.join(lists)}" if lists else ""
            return format_html("{}{} <small class='quiet'>({})</small>",
                               ", ".join(routing.channels), extra, routing.source_label)

        return [*super().get_list_display(request), effective_channels]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(ModelAdmin):
    list_display = ["name", "public_id", "created_at"]
    search_fields = ["name", "public_id"]
    readonly_fields = ["public_id", "created_at"]
    inlines = [MembershipInline]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None:  # the id is drawn when the workspace is saved; don't show a draft
            fields = [f for f in fields if f not in ("public_id", "created_at")]
        return fields


@admin.register(Event)
class EventAdmin(ModelAdmin):
    """The event log, read-only."""

    list_display = ["occurred_at", "event_type", "badge", "workspace", "status", "dedupe_key",
                    "error"]
    list_filter = ["status", "priority", "event_type__category", "event_type"]
    search_fields = ["=id", "dedupe_key", "event_type__key", "workspace__public_id"]
    list_select_related = ["event_type", "workspace"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Event._meta.fields]
    change_form_template = "admin/events/event/change_form.html"

    @admin.display(description="Priority", ordering="priority")
    def badge(self, event):
        return priority_badge(event.priority)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The event, and why each person it was for got it on each channel, or did not."""
        event = self.get_object(request, object_id)
        explained = explain_event(event) if event is not None else []
        channels = sorted({name for _, decisions in explained for name in decisions})
        rows = [(person, [decisions.get(name) for name in channels])
                for person, decisions in explained]
        context = {**(extra_context or {}), "explain_channels": channels,
                   "explain_rows": rows}
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="Error")
    def error(self, event):
        """Why routing failed (status failed), cut short for the list."""
        text = event.last_error
        return text if len(text) <= 120 else text[:119] + "…"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# API tokens are credentials: never list them back in the admin. Users obtain theirs from
# POST /api/auth/token/.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
