from datetime import timedelta

from django.core.management.base import BaseCommand

from events.services import outbox_sweep


class Command(BaseCommand):
    help = "Enqueue routing for events still pending (the broker was down when they committed)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=None,
                            help="Seconds an event must have waited (default: the setting)")

    def handle(self, *args, **options):
        seconds = options["older_than"]
        older_than = timedelta(seconds=seconds) if seconds is not None else None
        self.stdout.write(f"{outbox_sweep(older_than=older_than)} events enqueued.")
