"""The channels' admin: email settings, webhook endpoints, digest switches."""

from . import digests, email, webhooks  # noqa: F401 (they register the admins)
