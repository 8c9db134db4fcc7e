"""One event's email for many recipients at the cost of one.

Building a MIME message is mostly parsing and folding headers and encoding bodies: about
4 ms of CPU per message, more than sending it over a kept SMTP connection. An event's
email differs between its recipients only in ``To``, ``Message-ID`` and the signed
Acknowledge link, so ``prepare_event_email`` builds it once (``channels_app.emails``,
with markers in those places) and ``PreparedEventEmail.envelope`` makes each recipient's
bytes by putting the values in and quoted-printable encoding the two bodies again.

The result is the message ``build_event_email`` makes for that recipient, header for
header and word for word (tested). An address that is not plain ASCII is built the
ordinary way.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import escape
from django.utils.timezone import now

from . import emails
from .transports.smtp import Envelope, envelope_of

_TO = "recipient@to.invalid"
_MESSAGE_ID = "<message-id@to.invalid>"
_ACKNOWLEDGE = "https://acknowledge.invalid/ACKNOWLEDGE-LINK"
_TEXT, _HTML = "DATAFI-TEXT-BODY-MARKER", "DATAFI-HTML-BODY-MARKER"
#: Addresses whose header is the address itself (no quoting, no encoding needed).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@dataclass(frozen=True)
class PreparedEventEmail:
    """An event's email with its per-recipient parts left open (``prepare_event_email``)."""

    head: bytes = field(repr=False)  # up to the text body
    middle: bytes = field(repr=False)  # between the text and the HTML body
    tail: bytes = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)
    build: dict = field(repr=False)  # build_event_email's arguments, for the slow path

    def envelope(self, *, to: str, message_id: str, acknowledge_url: str | None) -> Envelope:
        """The bytes ``to`` receives. Raises ValueError for an address that is not one
        valid address (as ``build_event_email``)."""
        if not _PLAIN_ADDRESS.fullmatch(to) or not message_id.isascii():
            return envelope_of(emails.build_event_email(
                **self.build, to=to, message_id=message_id, acknowledge_url=acknowledge_url))
        emails.check_address(to, role="recipient address")
        link = emails.header_text(acknowledge_url or "")
        head = self.head.replace(_TO.encode(), to.encode(), 1).replace(
            _MESSAGE_ID.encode(), emails.header_text(message_id).encode(), 1)
        data = b"".join((head, _qp(self.text.replace(_ACKNOWLEDGE, link)), self.middle,
                         _qp(self.html.replace(_ACKNOWLEDGE, escape(link))), self.tail))
        return Envelope(recipients=(to,), data=data, message_id=message_id)


def prepare_event_email(*, event, title: str, from_email: str, from_name: str, app_url: str,
                        unsubscribe_url: str | None, acknowledge: bool,
                        date: datetime | None = None) -> PreparedEventEmail:
    """``build_event_email`` of ``event`` for every recipient at once; ``acknowledge``: each
    recipient's message carries its own Acknowledge link."""
    build = {"event": event, "title": title, "from_email": from_email, "from_name": from_name,
             "app_url": app_url, "unsubscribe_url": unsubscribe_url, "date": date or now()}
    message = emails.build_event_email(**build, to=_TO, message_id=_MESSAGE_ID,
                                       acknowledge_url=_ACKNOWLEDGE if acknowledge else None)
    text_part, html_part = message.iter_parts()
    text, html = text_part.get_content(), html_part.get_content()
    text_part.set_content(_TEXT, cte="quoted-printable")
    html_part.set_content(_HTML, subtype="html", cte="quoted-printable")
    # set_content puts MIME-Version first in each part; the built text part has none, its
    # HTML part (added by add_alternative) one at the end.
    del text_part["MIME-Version"], html_part["MIME-Version"]
    html_part["MIME-Version"] = "1.0"
    skeleton = message.as_bytes()
    head, _, rest = skeleton.partition(_TEXT.encode() + b"\r\n")
    middle, _, tail = rest.partition(_HTML.encode() + b"\r\n")
    if not tail or _TO.encode() not in head or _MESSAGE_ID.encode() not in head:
        raise AssertionError("the email's skeleton lost a marker")  # a change in emails.py
    return PreparedEventEmail(head=head, middle=middle, tail=tail, text=text, html=html,
                              build=build)


def _qp(body: str) -> bytes:
    """``body`` (lines ending in \\n) quoted-printable encoded with CRLF line ends, as the
    email package's ``set_content(cte="quoted-printable")`` does."""
    encoded = binascii.b2a_qp(body.replace("\n", "\r\n").encode("utf-8"), istext=True)
    return encoded if encoded.endswith(b"\r\n") else encoded + b"\r\n"
