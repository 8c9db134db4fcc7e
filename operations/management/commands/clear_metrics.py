from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = ("Empty PROMETHEUS_MULTIPROC_DIR, the metrics files of the processes of this host. "
            "Run it before starting them (bin/serve does), never while they run: their "
            "values would be lost.")

    def handle(self, *args, **options):
        removed = 0
        for path in Path(settings.PROMETHEUS_MULTIPROC_DIR).glob("*.db"):
            path.unlink(missing_ok=True)
            removed += 1
        self.stdout.write(f"{removed} metrics files removed from "
                          f"{settings.PROMETHEUS_MULTIPROC_DIR}")
