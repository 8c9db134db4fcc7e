"""Administration of the digest switches: per channel, digests or immediate sends."""

from django.contrib import admin

from core.admin import ModelAdmin

from ..models import DigestSetting


@admin.register(DigestSetting)
class DigestSettingAdmin(ModelAdmin):
    """Per channel: batch medium, low and info into digests, or send them immediately."""

    list_display = ["channel", "digest_enabled"]
    list_editable = ["digest_enabled"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
