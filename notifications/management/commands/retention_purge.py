from django.core.management.base import BaseCommand, CommandError

from notifications.retention import retention_purge


class Command(BaseCommand):
    help = ("Delete events, notifications, deliveries and digests older than the retention "
            "window once nothing about them is still to be sent (beat runs this hourly).")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="the window in days (default DATAFI_RETENTION_DAYS; 0: keep all)")

    def handle(self, *args, **options):
        try:
            result = retention_purge(days=options["days"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(str(result).capitalize() + "."))
