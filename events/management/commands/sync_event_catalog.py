from django.core.management.base import BaseCommand

from events.services.catalog import catalog_sync


class Command(BaseCommand):
    help = "Create or refresh the built-in event catalog; keeps enabled flags and overrides."

    def handle(self, *args, **options):
        result = catalog_sync()
        if not result.changed:
            self.stdout.write("Event catalog is up to date.")
            return
        for key in result.created:
            self.stdout.write(f"created {key}")
        for key in result.updated:
            self.stdout.write(f"updated {key}")
        self.stdout.write(self.style.SUCCESS(
            f"Event catalog synced: {len(result.created)} created, {len(result.updated)} updated."
        ))
