import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from events.exceptions import EmitError
from events.services import event_emit


class Command(BaseCommand):
    help = "Emit an event, exactly as emit() would from code."

    def add_arguments(self, parser):
        parser.add_argument("event_type", help="Event type key, e.g. data_source.connection_lost")
        parser.add_argument("--workspace", help="Workspace id, e.g. ws_abc123")
        parser.add_argument("--payload", default="{}", help="JSON object")
        parser.add_argument("--dedupe-key")

    def handle(self, *args, **options):
        try:
            payload = json.loads(options["payload"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--payload is not valid JSON: {exc}") from None
        try:
            with transaction.atomic():
                event = event_emit(
                    options["event_type"],
                    payload=payload,
                    workspace=options["workspace"],
                    dedupe_key=options["dedupe_key"],
                )
        except EmitError as exc:
            raise CommandError(str(exc)) from None  # the message names the argument
        self.stdout.write(self.style.SUCCESS(
            f"Emitted {event.event_type.key} as event {event.pk} ({event.priority}, {event.status})"
        ))
        if event.deduplicated:
            self.stdout.write(f"dedupe key {event.dedupe_key!r} was emitted before as this "
                              "event; nobody is notified again.")
