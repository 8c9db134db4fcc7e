from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self):
        from events.signin import signin_rate

        signin_rate()  # a mistyped DATAFI_SIGNIN_THROTTLE_RATE stops every process at start
