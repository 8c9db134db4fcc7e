"""Conditional GETs for the bell: an idle poll answers 304 after one cheap query.

The ETag of a response is derived from the user's notification version
(``bell.notification_version``) and the request's path and query, so it changes
whenever what the user would see changes, and differs between users and filters.
"""

import hashlib

from django.utils.cache import patch_cache_control
from django.utils.http import parse_etags, quote_etag
from rest_framework import status
from rest_framework.response import Response

from ..selectors import bell


def notification_etag(request, *, version: str | None = None) -> str:
    """The quoted ETag of ``request``'s answer for the signed-in user (whose notification
    ``version`` is read when not given)."""
    if version is None:
        version = bell.notification_version(user=request.user)
    digest = hashlib.sha256(f"{version}|{request.get_full_path()}".encode()).hexdigest()
    return quote_etag(digest[:32])


def etag_matches(request, etag: str) -> bool:
    """Whether the client's ``If-None-Match`` already names ``etag`` (or ``*``)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag in tags or etag in [t.removeprefix("W/") for t in tags]


def not_modified(etag: str) -> Response:
    response = Response(status=status.HTTP_304_NOT_MODIFIED)
    return with_etag(response, etag)


def with_etag(response: Response, etag: str) -> Response:
    """``response`` carrying ``etag``; never stored by caches, revalidated on each poll."""
    response["ETag"] = etag
    patch_cache_control(response, no_store=True)
    return response
