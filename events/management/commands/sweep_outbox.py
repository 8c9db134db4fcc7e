from django.core.management.base import BaseCommand

from events.services.outbox import outbox_sweep


class Command(BaseCommand):
    help = "Enqueue routing for pending events that are due (their publish failed, or stale)."

    def handle(self, *args, **options):
        self.stdout.write(f"{outbox_sweep()} events enqueued.")
