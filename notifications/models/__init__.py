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
from .incidents import Escalation, InhibitRule
from .preferences import NotificationPreference
from .routing import (
    RoutingRule,
    RoutingVersion,
    normalize_escalation,
    validate_channels,
    validate_email_list,
    validate_escalation,
)

__all__ = [
    "BUCKET_BY_PRIORITY", "CHANNEL_MAX_LENGTH", "PRIORITY_BY_BUCKET", "SENT_ALONE", "Bucket",
    "Delivery", "DeliveryAttempt", "Digest", "Escalation", "InhibitRule", "Mute", "Notification",
    "NotificationGroup", "NotificationPreference", "RoutingRule", "RoutingVersion", "Silence",
    "UserNotificationSettings", "normalize_escalation", "validate_channels",
    "validate_email_list", "validate_escalation",
]
