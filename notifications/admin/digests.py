"""Administration of digests: sent and in-flight digests, the pending items, Flush now."""

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from core.admin import ApplicationErrors, ModelAdmin

from ..models import Bucket, Digest
from ..selectors.digests import pending_digest_table
from ..services.digests import digest_backends, digest_flush_enqueue


@admin.register(Digest)
class DigestAdmin(ModelAdmin):
    """Sent and in-flight digests, the pending items per bucket, and Flush now."""

    list_display = ["created_at", "channel", "bucket", "user", "target", "item_count", "status",
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
        table = pending_digest_table()
        labels = {backend.name: backend.label for backend in digest_backends()}
        buckets = [
            {
                "value": bucket.value,
                "label": bucket.label,
                "channels": [(labels[channel], count)
                             for channel, count in table[bucket.value].items()],
                "total": sum(table[bucket.value].values()),
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
        with ApplicationErrors(self, request) as refusal:  # unknown bucket, broker down
            digest_flush_enqueue(bucket=bucket)
        if refusal.error is None:
            self.message_user(request,
                              f"Flush of {bucket} queued: the digests are sent in a moment.",
                              messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:notifications_digest_changelist"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
