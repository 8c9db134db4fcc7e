"""The admin's Overview page (operations > Overview): charts of the last 24 hours or 7 days."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from .models import Overview
from .overview import RANGES, overview_page


@admin.register(Overview)
class OverviewAdmin(admin.ModelAdmin):
    """No list, no forms: the model's changelist is the Overview (its view permission)."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        chosen = request.GET.get("range", "24h")
        if chosen not in RANGES:
            chosen = "24h"
        context = {**self.admin_site.each_context(request), **(extra_context or {}),
                   "title": "Overview", "opts": self.model._meta,
                   **overview_page(range_name=chosen)}
        return TemplateResponse(request, "admin/operations/overview.html", context)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
