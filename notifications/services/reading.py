"""Reading state of the bell: read, unread, read all.

Every change of reading state also sets ``updated_at``: the bell's ETag follows it
(``selectors.bell.notification_version``).
"""

from django.utils import timezone

from ..models import Notification


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = notification.updated_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def notification_mark_unread(*, notification: Notification) -> Notification:
    if notification.read_at is not None:
        notification.read_at = None
        notification.updated_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def notification_mark_all_read(*, user) -> int:
    """Mark all of ``user``'s unread notifications read; returns how many changed."""
    now = timezone.now()
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=now, updated_at=now
    )


def notifications_mark_read(*, user, ids) -> int:
    """Mark those of ``ids`` that are ``user``'s own and unread as read; returns how many.

    Ids of other users' notifications, or of none, are ignored.
    """
    now = timezone.now()
    return Notification.objects.filter(user=user, pk__in=ids, read_at__isnull=True).update(
        read_at=now, updated_at=now
    )
