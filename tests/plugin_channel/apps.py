from django.apps import AppConfig


class PluginChannelConfig(AppConfig):
    name = "tests.plugin_channel"
    label = "plugin_channel"
    verbose_name = "Team chat (a plug-in channel)"

    def ready(self):
        from channels_app.backends import register

        from .backend import ChatBackend

        register(ChatBackend)
