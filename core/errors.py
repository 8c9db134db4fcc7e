"""The one error family of the application: a refusal, with a code, a field and a status.

A service that refuses its input or an action raises an ``ApplicationError`` (or one of
its kinds below); nothing has been written then. REST answers it once, in
``core.rest.exception_handler``; the admin once, in ``core.admin``. Transport outcomes
of a send are not refusals: they are ``channels_app.errors.DeliveryError``.

REST bodies: a 400 is ``{field: [message, ...], ...}`` (``non_field_errors`` when no field
is named), as DRF's own validation answers; 404, 409, 429 and 503 are
``{"detail": message, "code": code}`` plus ``field`` when one is named (and a 429 has
``Retry-After``).
"""

from collections.abc import Mapping

from django.core.exceptions import ValidationError

NON_FIELD = "non_field_errors"


class ApplicationError(ValueError):
    """A service refused its input (400 by default); nothing was written.

    ``field`` names the input the message is about; ``errors`` may carry several fields at
    once (``{field: [message, ...]}``), e.g. from a model's validation.
    """

    status_code = 400
    code = "invalid"
    field: str | None = None
    #: Seconds after which asking again may succeed (REST's ``Retry-After``), if known.
    retry_after: int | None = None

    def __init__(self, message: str = "", *, field: str | None = None, code: str | None = None,
                 errors: Mapping[str, list[str]] | None = None):
        if errors and not message:
            message = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in errors.items())
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field
        if code is not None:
            self.code = code
        self.errors = {name: list(texts) for name, texts in errors.items()} if errors else None

    def as_data(self) -> dict:
        """The error as REST answers it (see the module docstring)."""
        if self.status_code == 400:
            if self.errors:
                return dict(self.errors)
            return {self.field or NON_FIELD: [self.message]}
        data = {"detail": self.message, "code": self.code}
        if self.field:
            data["field"] = self.field
        return data


class NotFound(ApplicationError):
    """What the request names does not exist (or is not the caller's to see)."""

    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    """The action does not fit the current state (e.g. retrying a delivery that is on its way)."""

    status_code = 409
    code = "conflict"


class TooManyRequests(ApplicationError):
    """The caller asked too often; ``retry_after`` says when it may ask again (a 429)."""

    status_code = 429
    code = "throttled"


class Unavailable(ApplicationError):
    """A service the action needs does not answer now (e.g. the task broker)."""

    status_code = 503
    code = "unavailable"


def from_validation_error(exc) -> ApplicationError:
    """A Django ``ValidationError`` (a model's ``full_clean``) as an ``ApplicationError``."""
    if hasattr(exc, "error_dict"):
        errors = {NON_FIELD if name == "__all__" else name: messages
                  for name, messages in exc.message_dict.items()}
        return ApplicationError(errors=errors)
    return ApplicationError(" ".join(exc.messages))


def full_clean(instance, **kwargs) -> None:
    """``instance.full_clean()``, refusing as an ``ApplicationError`` naming the fields."""
    try:
        instance.full_clean(**kwargs)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
