"""Channel backends, one class per channel behind one small interface, found by name."""

from .base import ChannelBackend, get_backend, register, registered_backends

__all__ = ["ChannelBackend", "get_backend", "register", "registered_backends"]
