"""Delivery policies: the rules between "who is in the audience" and "send it".

Routing runs them in the order of ``DATAFI_ROUTING_POLICIES`` (import strings, like
NetBox's ``EVENTS_PIPELINE``) over each batch's plan; each is one module with one job. See
``base.Policy`` for what a policy may do.
"""

from .base import Policy, active_policies

__all__ = ["Policy", "active_policies"]
