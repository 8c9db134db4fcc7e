"""The notifications app's admin, one module per subdomain."""

from . import attention, bell, deliveries, digests, incidents, routing  # noqa: F401
