"""What notifications reads, one module per subdomain: ``bell``, ``preferences``,
``deliveries``, ``digests``. Routing's reads are ``notifications.routing``."""
