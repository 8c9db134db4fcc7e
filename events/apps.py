from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self):
        from events.signin import signin_rate

        signin_rate()  # a mistyped DATAFI_SIGNIN_THROTTLE_RATE stops every process at start
        from events.sqlite_triggers import restorer

        post_migrate.connect(restorer("events.migrations.0005_catalog_version",
                                      "events_catalogversion"),
                             sender=self, weak=False, dispatch_uid="events.sqlite_triggers")
