from django.contrib import admin

from .models import DigestSetting


@admin.register(DigestSetting)
class DigestSettingAdmin(admin.ModelAdmin):
    """Per channel: batch medium, low and info into digests, or send them immediately."""

    list_display = ["channel", "digest_enabled"]
    list_editable = ["digest_enabled"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
