"""What ``emit()`` and the workspace services raise on bad input: kinds of the one error
family (``core.errors.ApplicationError``), each naming the input it came from.
"""

from core.errors import ApplicationError, Conflict, TooManyRequests, Unavailable


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


class WorkspaceConflict(Conflict, WorkspaceError):
    """The workspace, or the membership, exists already (a 409 over REST)."""

    code = "exists"


class BrokerUnavailable(Unavailable):
    """A task could not be queued now because the broker does not answer (a 503)."""

    code = "broker_unavailable"


class SigninThrottled(TooManyRequests):
    """Too many failed sign-in attempts from the client's address or for the username
    (``events.signin``); the password was not checked. A 429 with ``Retry-After``."""

    def __init__(self, *, retry_after: int):
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"Too many sign-in attempts; try again in {retry_after} {unit}.")
        self.retry_after = retry_after
