"""The application's one error type, and what ``emit()`` raises on bad input.

Each names the problem and the input it came from; the API answers it as a 400
``{field: [message]}`` (``config.api.exception_handler``).
"""


class ApplicationError(ValueError):
    """A service refused its input; nothing was written."""

    field = "non_field_errors"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def as_data(self) -> dict:
        """The error as the API answers it."""
        return {self.field: [self.message]}


class EmitError(ApplicationError):
    """Base class of what ``emit()`` raises: the event was refused."""


class UnknownEventType(EmitError):
    field = "event_type"


class InvalidPayload(EmitError):
    field = "payload"


class PayloadTooLarge(InvalidPayload):
    pass


class UnknownWorkspace(EmitError):
    field = "workspace_id"


class EmitNotAllowed(EmitError):
    """The caller may not emit to this audience (see ``event_emit``'s ``emitted_by``)."""

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
