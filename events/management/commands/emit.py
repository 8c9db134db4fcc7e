import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from events.exceptions import EmitError
from events.services.emit import event_emit


class Command(BaseCommand):
    help = "Emit an event, exactly as emit() would from code."

    def add_arguments(self, parser):
        parser.add_argument("event_type", help="Event type key, e.g. data_source.connection_lost")
        parser.add_argument("--workspace", help="Workspace id, e.g. ws_abc123")
        parser.add_argument("--payload", default="{}", help="JSON object")
        parser.add_argument("--dedupe-key")

    def handle(self, *args, **options):
        for name in ("event_type", "workspace", "payload", "dedupe_key"):
            _check_utf8(options[name], name)
        try:
            payload = json.loads(options["payload"])
        except RecursionError:
            raise CommandError("--payload is nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, or an integer past Python's digit limit
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


def _check_utf8(value, name: str) -> None:
    """Arguments that were not UTF-8 reach Python as lone surrogates: refuse them clearly."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            option = name if name == "event_type" else f"--{name.replace('_', '-')}"
            raise CommandError(f"{option} is not valid UTF-8 text") from None
