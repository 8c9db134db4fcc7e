"""The application's one error type, and what ``emit()`` raises on bad input.

Each names the problem and the input it came from; the API answers it as a 400
``{field: [message]}`` (``config.api.exception_handler``).
"""


class ApplicationError(ValueError):
    """A service refused its input; nothing was written."""

    field = "non_field_errors"
    #: How the API answers it: 400, unless the refusal is about the service, not the input.
    status_code = 400
    #: Seconds after which asking again may succeed (the API's ``Retry-After``), if known.
    retry_after: int | None = None

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


class WorkspaceError(ApplicationError):
    """A workspace or membership change was refused and nothing was written.

    ``field`` names the input it came from (as in the REST API and the commands).
    """


class BrokerUnavailable(ApplicationError):
    """A task could not be queued now because the broker does not answer (a 503)."""

    status_code = 503


class SigninThrottled(ApplicationError):
    """Too many failed sign-in attempts from the client's address or for the username
    (``events.signin``); the password was not checked. A 429 with ``Retry-After``."""

    status_code = 429

    def __init__(self, *, retry_after: int):
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"Too many sign-in attempts; try again in {retry_after} {unit}.")
        self.retry_after = retry_after
