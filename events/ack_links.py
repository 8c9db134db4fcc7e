"""Signed one-click acknowledge links, carried by critical and high emails.

A link names one delivery (so it says who used it: the member, or the list address) and is
signed with the project's secret under its own salt, so no other signed value of the
project can be passed off as one, and it expires after ``MAX_AGE``. Following the link only
shows a confirmation page (mail scanners follow links); the page's POST acknowledges
(``web.acknowledge``).
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing

SALT = "datafi.acknowledge-link"
MAX_AGE = timedelta(days=7)
#: The page's path under ``DATAFI_APP_URL``; ``web.urls`` serves it.
PATH_PREFIX = "acknowledge/"


class LinkError(Exception):
    """A link that does not acknowledge anything; ``expired`` tells why."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message)
        self.message = message
        self.expired = expired


def acknowledge_token(delivery_id) -> str:
    return signing.TimestampSigner(salt=SALT).sign(str(delivery_id))


def acknowledge_url(delivery_id) -> str:
    return f"{settings.DATAFI_APP_URL.rstrip('/')}/{PATH_PREFIX}{acknowledge_token(delivery_id)}/"


def delivery_id_from(token: str) -> str:
    """The delivery a link's token names; raises ``LinkError`` for a tampered or expired one."""
    try:
        return signing.TimestampSigner(salt=SALT).unsign(token, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise LinkError(f"This acknowledge link has expired: links work for "
                        f"{MAX_AGE.days} days after the email was sent.", expired=True) from None
    except signing.BadSignature:
        raise LinkError("This acknowledge link is not valid: it may have been cut short or "
                        "changed. Copy the whole link from the email.") from None
