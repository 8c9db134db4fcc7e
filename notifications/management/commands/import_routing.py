import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from notifications.routing.files import RoutingFileError, routing_file_read, routing_import


class Command(BaseCommand):
    help = "Apply a routing YAML file atomically: all of it, or nothing when any key is wrong."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the YAML file, or - for standard input")
        parser.add_argument("--replace", action="store_true",
                            help="The file is the whole configuration: remove what it omits")

    def handle(self, *args, **options):
        name = options["file"]
        try:
            if name == "-":
                text = routing_file_read(getattr(sys.stdin, "buffer", sys.stdin))
            else:
                with Path(name).open("rb") as file:
                    text = routing_file_read(file)
            result = routing_import(text, replace=options["replace"])
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None
        except RoutingFileError as exc:
            raise CommandError(f"{exc}. Nothing was changed.") from None
        self.stdout.write(self.style.SUCCESS(result.summary()))
