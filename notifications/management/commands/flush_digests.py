from django.core.management.base import BaseCommand

from notifications.models import Bucket
from notifications.services.digests import digest_flush


class Command(BaseCommand):
    help = "Flush one digest bucket now: each pending item is sent exactly once."

    def add_arguments(self, parser):
        parser.add_argument("--bucket", required=True, choices=Bucket.values)

    def handle(self, *args, **options):
        result = digest_flush(bucket=options["bucket"])
        self.stdout.write(self.style.SUCCESS(
            f"Bucket {result.bucket}: {result.claimed_items} items claimed, "
            f"{result.digests_sent} digests sent."
        ))
