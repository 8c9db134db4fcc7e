"""The notifications app's admin, one module per subdomain."""

from . import bell, deliveries, digests, routing  # noqa: F401 (they register the admins)
