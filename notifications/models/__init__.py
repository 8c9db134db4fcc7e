"""The notifications app's models, one module per subdomain."""

from .attention import Mute, NotificationGroup, Silence, UserNotificationSettings
from .bell import Notification
from .deliveries import (
    BUCKET_BY_PRIORITY,
    CHANNEL_MAX_LENGTH,
    PRIORITY_BY_BUCKET,
    SENT_ALONE,
    Bucket,
    Delivery,
    DeliveryAttempt,
    Digest,
)
from .preferences import NotificationPreference
from .routing import RoutingRule, RoutingVersion, validate_channels, validate_email_list

__all__ = ["BUCKET_BY_PRIORITY", "CHANNEL_MAX_LENGTH", "PRIORITY_BY_BUCKET", "SENT_ALONE", "Bucket",
           "Delivery", "DeliveryAttempt", "Digest", "Mute", "Notification", "NotificationGroup",
           "NotificationPreference", "Silence", "UserNotificationSettings",
           "RoutingRule", "RoutingVersion", "validate_channels", "validate_email_list"]
