"""Webhooks: payload builders (``payloads``) and signatures (``signing``).

Receivers verify a request with::

    from channels_app.webhooks import verify_signature
"""

from .signing import sign, verify_signature

__all__ = ["sign", "verify_signature"]
