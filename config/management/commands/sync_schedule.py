from django.core.management.base import BaseCommand

from config.schedule import schedule_sync


class Command(BaseCommand):
    help = ("Write beat's periodic tasks from the control plane (config/control_plane.py); "
            "keeps the schedules and switches an admin changed.")

    def handle(self, *args, **options):
        result = schedule_sync()
        for name in result.created:
            self.stdout.write(f"created {name}")
        for name in result.updated:
            self.stdout.write(f"updated {name}")
        self.stdout.write(self.style.SUCCESS(
            f"Beat schedule synced: {len(result.created)} created, {len(result.updated)} updated."
        ))
