from django.apps import AppConfig

from channels_app.signals import email_enabled


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from .delivery import channel_deliveries_enqueue  # needs the models: after loading

        def send_waiting_email(sender, **kwargs):
            """Email was saved enabled: the email deliveries that waited are sent now."""
            channel_deliveries_enqueue(channel="email")

        email_enabled.connect(send_waiting_email, weak=False,
                              dispatch_uid="notifications.send_waiting_email")
