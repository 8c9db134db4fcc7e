"""The notifications app's admin, one module per subdomain."""

from . import attention, bell, deliveries, digests, routing  # noqa: F401 (registers admins)
