from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels"

    def ready(self):
        from .backends import register  # the registry needs the models: after loading
        from .backends.email import EmailBackend
        from .backends.webhook import WebhookBackend

        register(EmailBackend)
        register(WebhookBackend)
