"""Channel backends, one class per channel behind one small interface, found by name.

The built-in backends are registered here, when this package is first imported.
"""

from .base import (
    ChannelBackend,
    Recipient,
    SendResult,
    get_backend,
    register,
    registered_backends,
    unregister,
)
from .email import EmailBackend
from .in_app import InAppBackend
from .webhook import EndpointTarget, WebhookBackend

BUILTIN_BACKENDS = (InAppBackend, EmailBackend, WebhookBackend)
for _backend in BUILTIN_BACKENDS:
    register(_backend)

__all__ = ["BUILTIN_BACKENDS", "ChannelBackend", "EmailBackend", "EndpointTarget", "InAppBackend",
           "Recipient", "SendResult", "WebhookBackend", "get_backend", "register",
           "registered_backends", "unregister"]
