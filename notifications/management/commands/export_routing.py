from django.core.management.base import BaseCommand

from notifications.routing.files import routing_export


class Command(BaseCommand):
    help = "Print the routing rules and priority overrides as a routing YAML file."

    def handle(self, *args, **options):
        self.stdout.write(routing_export(), ending="")
