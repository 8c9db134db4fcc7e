"""One webhook request: the rendered body and where it goes; signed and posted per attempt."""

from dataclasses import dataclass, field

from django.conf import settings

from channels_app.transports import http

from . import signing

USER_AGENT = "Datafi-Webhooks/1.0"


@dataclass(frozen=True)
class WebhookMessage:
    """One rendered request; signed and sent by ``WebhookBackend.send``."""

    endpoint_id: int
    url: str = field(repr=False)
    event_type: str
    delivery_id: str
    body: bytes = field(repr=False)
    secret: str = field(default="", repr=False)

    def headers(self, *, timestamp: int | None = None) -> dict[str, str]:
        """Every header of one attempt, signed now (or at ``timestamp``)."""
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Datafi-Event": self.event_type,
            "X-Datafi-Delivery": self.delivery_id,
            **signing.sign(secret=self.secret, body=self.body, delivery_id=self.delivery_id,
                           timestamp=timestamp),
        }

    def __str__(self):  # what text_of() and logs see: never the secret
        return self.body.decode("utf-8")


def http_limits() -> http.Limits:
    return http.Limits(connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS,
                       read_timeout=settings.WEBHOOK_READ_TIMEOUT_SECONDS,
                       max_response_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES)


def post(message: WebhookMessage) -> http.Response:
    """Sign ``message`` now and POST it once (raises TransientError / PermanentError)."""
    return http.post(message.url, body=message.body, headers=message.headers(),
                     limits=http_limits(),
                     allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
                     ca_bundle=settings.WEBHOOK_CA_BUNDLE or None)
