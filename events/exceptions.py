"""What ``emit()`` raises on bad input. Each names the problem and the argument it came from."""


class EmitError(ValueError):
    """Base class: the event was refused and nothing was written."""

    field = "non_field_errors"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownEventType(EmitError):
    field = "event_type"


class InvalidPayload(EmitError):
    field = "payload"


class PayloadTooLarge(InvalidPayload):
    pass


class UnknownWorkspace(EmitError):
    field = "workspace_id"


class InvalidRecipients(EmitError):
    field = "recipients"


class InvalidDedupeKey(EmitError):
    field = "dedupe_key"


class InvalidOccurredAt(EmitError):
    field = "occurred_at"


class WorkspaceError(ValueError):
    """A workspace or membership change was refused and nothing was written.

    ``field`` names the input it came from (as in the REST API and the commands).
    """

    def __init__(self, message: str, *, field: str = "non_field_errors"):
        super().__init__(message)
        self.message = message
        self.field = field
