"""One event's email at the cost of rendering its two bodies.

Building a MIME message is mostly parsing and folding headers and encoding bodies: about
4 ms of CPU per message, more than sending it over a kept SMTP connection. An event's
email differs between its recipients only in ``To``, ``Message-ID`` and the signed
Acknowledge link, and between events (of one sender) only in its bodies and four header
values: Subject, Date, X-Datafi-Event and X-Datafi-Priority. So the message's skeleton is
built once per sender (``channels_app.emails``, with markers in those places), an event's
message is its rendered bodies and header values put into that skeleton
(``prepare_event_email``), and ``PreparedEventEmail.envelope`` makes each recipient's bytes
by putting the values in and quoted-printable encoding the two bodies.

The result is the message ``build_event_email`` makes for that recipient, header for
header and word for word (tested): a header value goes into the skeleton only as the
email package would write it, as it is (short printable ASCII, nothing it would encode or
fold); otherwise the event's own skeleton is built by the email package, and an address
that is not plain ASCII is built the ordinary way. The MIME boundary is the skeleton's:
it cannot occur in a quoted-printable body, which writes every ``=`` as ``=3D``.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache

from django.utils.html import escape
from django.utils.timezone import now

from . import emails
from .transports.smtp import Envelope, envelope_of

_TO = "recipient@to.invalid"
_MESSAGE_ID = "<message-id@to.invalid>"
_ACKNOWLEDGE = "https://acknowledge.invalid/ACKNOWLEDGE-LINK"
_TEXT, _HTML = "DATAFI-TEXT-BODY-MARKER", "DATAFI-HTML-BODY-MARKER"
_SUBJECT, _EVENT, _PRIORITY = "DATAFI-SUBJECT-MARKER", "DATAFI-EVENT-MARKER", "DATAFI-PRIO-MARKER"
_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # the skeleton's Date, replaced by the event's
_HEADER_VALUES = re.compile(rb"DATAFI-(SUBJECT|EVENT|PRIO)-MARKER|"
                            + re.escape(format_datetime(_DATE).encode()))
#: Addresses whose header is the address itself (no quoting, no encoding needed).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
#: Header values the email package writes as they are: printable ASCII words, single
#: spaces, nothing like an encoded word.
_VERBATIM = re.compile(r"(?!.*=\?)[!-~]+( [!-~]+)*")
#: Text a value must not hold: it would be taken for one of the skeleton's markers.
_MARKER = re.compile(r"to\.invalid|DATAFI-", re.IGNORECASE)
_MAX_LINE = 78
#: The event's header values, by the marker that stands for each in a sender's skeleton.
_HEADERS = {_SUBJECT: "Subject", _EVENT: "X-Datafi-Event", _PRIORITY: "X-Datafi-Priority"}


@dataclass(frozen=True)
class PreparedEventEmail:
    """An event's email with its per-recipient parts left open (``prepare_event_email``)."""

    head: bytes | None = field(repr=False)  # up to the text body; None: the slow path
    middle: bytes = field(repr=False)  # between the text and the HTML body
    tail: bytes = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)
    build: dict = field(repr=False)  # build_event_email's arguments, for the slow path

    def envelope(self, *, to: str, message_id: str, acknowledge_url: str | None) -> Envelope:
        """The bytes ``to`` receives. Raises ValueError for an address that is not one
        valid address (as ``build_event_email``)."""
        if self.head is None or not _PLAIN_ADDRESS.fullmatch(to) or not message_id.isascii():
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
    context = emails.event_email_context(
        event=event, title=title, app_url=app_url, unsubscribe_url=unsubscribe_url,
        acknowledge_url=_ACKNOWLEDGE if acknowledge else None)
    text, html = emails.render_bodies("event", context)
    values = {"Subject": emails.subject_text(context["subject"]),
              "X-Datafi-Event": emails.header_text(event.event_type.key),
              "X-Datafi-Priority": emails.header_text(event.priority)}
    head = middle = tail = None  # a value holding a marker: the ordinary build, per recipient
    if not any(_MARKER.search(value) for value in values.values()):
        if all(_VERBATIM.fullmatch(value) and len(name) + 2 + len(value) <= _MAX_LINE
               for name, value in values.items()):
            head, middle, tail = _skeleton(from_email, from_name, unsubscribe_url)
        if head is not None:
            stamp = format_datetime(build["date"])
            head = _HEADER_VALUES.sub(lambda found: values.get(
                _HEADERS.get(found.group().decode()), stamp).encode(), head)
        else:  # the email package folds or encodes one of them: this event's own skeleton
            head, middle, tail = _split(emails.assemble_message(
                subject=context["subject"], bodies=(_TEXT, _HTML), to=_TO,
                message_id=_MESSAGE_ID, from_email=from_email, from_name=from_name,
                datafi_event=event.event_type.key, priority=event.priority,
                unsubscribe_url=unsubscribe_url, date=build["date"]))
    return PreparedEventEmail(head=head, middle=middle, tail=tail, text=text, html=html,
                              build=build)


@lru_cache(maxsize=64)
def _skeleton(from_email: str, from_name: str, unsubscribe_url: str | None) -> tuple:
    """The message of one sender (and unsubscribe link) with every other value a marker."""
    return _split(emails.assemble_message(
        subject=_SUBJECT, bodies=(_TEXT, _HTML), to=_TO, message_id=_MESSAGE_ID,
        from_email=from_email, from_name=from_name, datafi_event=_EVENT, priority=_PRIORITY,
        unsubscribe_url=unsubscribe_url, date=_DATE), _SUBJECT, _EVENT, _PRIORITY,
        format_datetime(_DATE))


def _split(message, *markers: str) -> tuple:
    """A skeleton's bytes: up to the text body, between the bodies, after the HTML body;
    three Nones if a marker is not there exactly once (a sender's name or address holding
    one: each message is then built the ordinary way)."""
    data = message.as_bytes()
    if any(data.count(marker.encode()) != 1
           for marker in (_TO, _MESSAGE_ID, _TEXT, _HTML, *markers)):
        return None, None, None
    head, _, rest = data.partition(_TEXT.encode() + b"\r\n")
    middle, _, tail = rest.partition(_HTML.encode() + b"\r\n")
    return head, middle, tail


def _qp(body: str) -> bytes:
    """``body`` (lines ending in \\n) quoted-printable encoded with CRLF line ends, as the
    email package's ``set_content(cte="quoted-printable")`` does."""
    encoded = binascii.b2a_qp(body.replace("\n", "\r\n").encode("utf-8"), istext=True)
    return encoded if encoded.endswith(b"\r\n") else encoded + b"\r\n"
