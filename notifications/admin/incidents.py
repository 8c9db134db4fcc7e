"""Administration of incidents: inhibit rules, the escalations beat sends or cancels, and
resolving events by hand from the event log."""

from django import forms
from django.contrib import admin, messages

from core.admin import ApplicationErrors, ModelAdmin, ServiceDeletes
from events.admin import EventAdmin
from events.models import Category, Event, EventType

from ..models import Escalation, InhibitRule
from ..services.incidents import event_resolve_by_hand, inhibit_rule_delete, inhibit_rule_save
from .routing import EmailListField as LineListField


class InhibitRuleForm(forms.ModelForm):
    target_event_types = forms.MultipleChoiceField(
        required=False, widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="Events of these types are inhibited…")
    target_categories = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="…and events of these categories.")
    equal = LineListField(required=False, label="Equal payload keys",
                          help_text="One per line, e.g. datasource_name: a target is inhibited "
                                    "only by a source with the same values. Empty: any source "
                                    "in the workspace.")

    class Meta:
        model = InhibitRule
        fields = ["source_event_type", "target_event_types", "target_categories", "equal",
                  "comment"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_event_types"].choices = list(
            EventType.objects.order_by("key").values_list("key", "key"))
        self.fields["target_categories"].choices = list(
            Category.objects.order_by("position", "slug").values_list("slug", "name"))

    def clean_equal(self):
        return self.cleaned_data.get("equal") or []


@admin.register(InhibitRule)
class InhibitRuleAdmin(ServiceDeletes, ModelAdmin):
    form = InhibitRuleForm
    list_display = ["__str__", "equal_keys", "comment", "created_by", "created_at"]
    list_select_related = ["source_event_type", "created_by"]
    autocomplete_fields = ["source_event_type"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(description="Equal")
    def equal_keys(self, rule):
        return ", ".join(rule.equal) or "-"

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in InhibitRuleForm.Meta.fields}
        values["source_event_type"] = values["source_event_type"].key
        saved = inhibit_rule_save(values=values, created_by=request.user,
                                  rule=InhibitRule.objects.get(pk=obj.pk) if change else None)
        obj.pk = saved.pk

    def delete_one(self, obj):
        inhibit_rule_delete(rule=obj)


@admin.register(Escalation)
class EscalationAdmin(ModelAdmin):
    """What beat's escalation sweep sends, sent, or cancelled (someone acknowledged or
    resolved the event first). Read-only: routing rules' ``escalate`` makes them."""

    list_display = ["event", "due_at", "status", "channel_list", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["event__event_type"]
    date_hierarchy = "due_at"
    readonly_fields = [f.name for f in Escalation._meta.fields]

    @admin.display(description="Channels")
    def channel_list(self, escalation):
        return ", ".join(escalation.channels)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


admin.site.unregister(Event)


@admin.register(Event)
class IncidentEventAdmin(EventAdmin):
    """The event log, with each event's acknowledgement and resolution, and an action that
    resolves the selected events (as the API's resolve does)."""

    list_display = [*EventAdmin.list_display, "state"]
    list_filter = [*EventAdmin.list_filter, ("resolved_at", admin.EmptyFieldListFilter)]
    actions = ["resolve_selected"]

    @admin.display(description="State")
    def state(self, event):
        if event.resolved_at:
            return "resolved"
        if event.acknowledged_at:
            return f"acknowledged by {event.acknowledged_by_name or 'someone'}"
        return "escalated" if event.escalated_at else "-"

    def has_resolve_permission(self, request):
        return request.user.is_staff and request.user.has_perm("events.view_event")

    @admin.action(description="Resolve the selected events", permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        resolved = 0
        for event in queryset:
            with ApplicationErrors(self, request):
                resolved += len(event_resolve_by_hand(event=event, user=request.user))
        self.message_user(request, f"{resolved} events resolved; receivers that got them are "
                                   "being told.", messages.SUCCESS)
