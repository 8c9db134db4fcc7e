from django.apps import AppConfig
from django.db.models.signals import post_migrate


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        # Imports need the models: after loading.
        from channels_app.backends import register
        from channels_app.signals import channel_ready
        from events import dispatch, routing_view
        from events.sqlite_triggers import restorer

        from . import tasks
        from .deliveries.manual import channel_deliveries_enqueue
        from .in_app import InAppBackend
        from .routing.explain import event_explain_members
        from .routing.rules import describe_event_types

        # Routing's cache version triggers, after every migrate (SQLite loses them).
        post_migrate.connect(restorer("notifications.migrations.0009_routing_version",
                                      "notifications_routingversion"),
                             sender=self, weak=False,
                             dispatch_uid="notifications.sqlite_triggers")
        register(InAppBackend)  # the bell: a channel like any other
        routing_view.register_describer(describe_event_types)  # the catalog's channels
        routing_view.register_explainer(event_explain_members)  # an event's admin page
        # The floor's routing jobs are done by these tasks.
        dispatch.register(dispatch.ROUTE_URGENT, tasks.event_route_urgent)
        dispatch.register(dispatch.ROUTE, tasks.event_route)
        dispatch.register(dispatch.ROUTE_PENDING, tasks.events_route_pending)

        def send_waiting(sender, channel, **kwargs):
            """A channel became ready: the deliveries that waited for it are sent now."""
            channel_deliveries_enqueue(channel=channel)

        channel_ready.connect(send_waiting, weak=False,
                              dispatch_uid="notifications.send_waiting")
