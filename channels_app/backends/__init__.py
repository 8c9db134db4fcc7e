"""Channel backends: one module per channel behind one small interface, found by name.

Apps register their channels in ``AppConfig.ready()``: channels_app registers email and
webhooks (``channels_app.apps``), notifications the in-app bell.
"""

from .base import (
    ChannelBackend,
    ChannelListError,
    Recipient,
    SendResult,
    channel_names,
    check_channel,
    check_channel_list,
    get_backend,
    member_fields,
    register,
    registered_backends,
    unregister,
    user_choosable_backends,
)

__all__ = ["ChannelBackend", "ChannelListError", "Recipient", "SendResult", "channel_names",
           "check_channel", "check_channel_list", "get_backend", "member_fields", "register",
           "registered_backends", "unregister", "user_choosable_backends"]
