"""What a failed send means, said the same way by every transport (SMTP now, HTTP next).

A transport raises ``TransientError`` when the same send may succeed later (connection
refused or reset, timeout, SMTP 4xx, HTTP 429/5xx) and ``PermanentError`` when it will not
(SMTP 5xx, authentication failure, HTTP 4xx). The delivery pipeline retries the first and
fails the delivery at once on the second.
"""


class DeliveryError(Exception):
    """A send that failed.

    ``kind`` names the failure in the product's words (``unreachable``, ``timeout``,
    ``tls_failed``, ``starttls_unsupported``, ``auth_failed``, ``rejected``,
    ``not_configured``, or a transport's own); ``code`` is the SMTP reply code or HTTP
    status when the peer answered; ``detail`` is a human sentence, free of secrets.
    """

    transient: bool = False

    def __init__(self, detail: str, *, kind: str, code: int | None = None,
                 retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail
        self.kind = kind
        self.code = code
        self.retry_after = retry_after

    def __repr__(self):
        return f"{type(self).__name__}(kind={self.kind!r}, code={self.code!r}, {self.detail!r})"


class TransientError(DeliveryError):
    """Worth retrying later."""

    transient = True


class PermanentError(DeliveryError):
    """Retrying will not help."""
