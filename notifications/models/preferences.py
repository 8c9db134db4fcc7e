"""Users' channel choices per category."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from events.models import Category


class NotificationPreference(models.Model):
    """One user's choice for one category on one channel; no row means on (the default).

    The channel is one users choose (``ChannelBackend.user_choosable``); critical events
    are delivered whatever the choice (``policies.critical``).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notification_preferences")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=30)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "category", "channel"],
                                    name="preference_once_per_channel"),
        ]
        indexes = [
            # Routing reads the opt-outs of one category.
            models.Index(fields=["category", "channel"], name="preference_opt_out_idx",
                         condition=Q(enabled=False)),
        ]

    def __str__(self):
        state = "on" if self.enabled else "off"
        return f"{self.user_id}: {self.category_id} {self.channel} {state}"
