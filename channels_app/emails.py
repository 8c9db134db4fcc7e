"""The email channel's messages: one per event, one digest per recipient and flush.

Pure rendering: nothing here sends, and nothing reads or writes the database beyond the
related rows of the events it is given. The delivery pipeline builds a message with
``build_event_email`` / ``build_digest_email`` and hands it to the SMTP transport.

Headers never carry a control character: titles, names and ids are flattened to one line
before they reach ``EmailMessage`` (whose policy would raise on CR/LF), so a payload cannot
add a header or a recipient, and building a message never fails because of its content.
Bodies come from ``templates/emails/``: HTML with autoescaping on, text with it off.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import TYPE_CHECKING, Any

from django.template import Context, Engine
from django.utils import timezone

from events.catalog import Priority

if TYPE_CHECKING:
    from events.models import Event

MAX_SUBJECT_CHARS = 250
_BLANK_LINES = re.compile(r"\n{3,}")


class MailPolicy(EmailPolicy):
    """``email.policy.SMTP``, except that a non-ASCII Subject is encoded whole.

    CPython's folder can leave the space between two words outside the encoded words of a
    long non-ASCII subject, and decoders drop whitespace between encoded words, so the
    receiver would read "数据源Über" (python/cpython#92081, #144156). Encoding the whole
    subject as base64 encoded words keeps every space inside one of them.
    """

    def fold(self, name, value):
        if self._encode_whole(name, value):
            return self._fold_whole(name, value)
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if self._encode_whole(name, value):
            return self._fold_whole(name, value).encode("ascii")
        return super().fold_binary(name, value)

    def _encode_whole(self, name, value) -> bool:
        return name.lower() == "subject" and not self.utf8 and not str(value).isascii()

    def _fold_whole(self, name, value) -> str:
        encoded = Header(str(value), "utf-8", header_name=name).encode(
            linesep=self.linesep, maxlinelen=self.max_line_length or 78)
        return f"{name}: {encoded}{self.linesep}"


MAIL_POLICY = MailPolicy(linesep="\r\n")


def make_message_id(delivery_id, domain: str) -> str:
    """The ``Message-ID`` of one delivery: the same for every attempt of that delivery.

    ``domain`` is the sender's domain; a whole from address is accepted too (the part after
    the last ``@`` is used). A receiver can drop a retried duplicate by this id.
    """
    domain = header_text(str(domain)).rpartition("@")[2].strip().lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    domain = re.sub(r"[^a-z0-9.-]", "", domain).strip(".") or "localhost"
    local = re.sub(r"[^A-Za-z0-9._-]", "", str(delivery_id)) or "delivery"
    return f"<{local}.datafi@{domain}>"


def priority_color(priority: str) -> str:
    return Priority.BADGE_COLORS.get(priority, Priority.BADGE_COLORS[Priority.INFO])


def priority_label(priority: str) -> str:
    return Priority.LABELS.get(priority) or header_text(priority).capitalize()


def header_text(value: Any) -> str:
    """``value`` as one header-safe line: every run of control characters, line or paragraph
    separators and whitespace becomes one space."""
    text = "" if value is None else str(value)
    return " ".join(
        "".join(" " if _is_break(char) else char for char in text).split()
    )


def build_event_email(
    *,
    event: Event,
    title: str,
    to: str,
    from_email: str,
    from_name: str,
    message_id: str,
    app_url: str,
    link_path: str | None = None,
    unsubscribe_url: str | None = None,
    acknowledge_url: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The email for one immediate ``event`` to one recipient ``to``.

    ``title`` is the event's rendered title (plain text). ``event`` needs its event type,
    category and workspace loaded (``select_related``) to avoid queries. The bodies list
    every payload field in key order and link to ``app_url`` + ``link_path``. Pass the same
    ``message_id`` (``make_message_id``) on every attempt of one delivery;
    ``unsubscribe_url`` adds ``List-Unsubscribe``; ``acknowledge_url`` an "Acknowledge"
    button (critical and high); ``date`` defaults to now. Raises ``ValueError`` only for an
    address that is not one valid address.
    """
    context = event_email_context(event=event, title=title, app_url=app_url,
                                  link_path=link_path, unsubscribe_url=unsubscribe_url,
                                  acknowledge_url=acknowledge_url)
    return _event_message(event, "event", context, to=to, from_email=from_email,
                          from_name=from_name, message_id=message_id, date=date)


def event_email_context(*, event: Event, title: str, app_url: str,
                        link_path: str | None = None, unsubscribe_url: str | None = None,
                        acknowledge_url: str | None = None) -> dict:
    """What ``build_event_email``'s templates and subject are made of."""
    title = header_text(title) or event.event_type.label
    return {
        **_event_context(event, title),
        "subject": f"[{priority_label(event.priority)}] {title}",
        "fields": _payload_fields(event.payload),
        "link": _link(app_url, link_path),
        "unsubscribe_url": unsubscribe_url,
        "acknowledge_url": acknowledge_url and header_text(acknowledge_url),
    }


def build_resolution_email(
    *,
    event: Event,
    title: str,
    to: str,
    from_email: str,
    from_name: str,
    message_id: str,
    app_url: str,
    unsubscribe_url: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The short follow-up telling ``to`` that ``event`` (whose email they got) is resolved:
    "Resolved: <title>", when and how. ``event`` as for ``build_event_email``."""
    title = header_text(title) or event.event_type.label
    context = {
        **_event_context(event, title),
        "subject": f"Resolved: {title}",
        "priority_color": Priority.RESOLVED_COLOR,
        "resolved_at": _utc(event.resolved_at or timezone.now()),
        "link": _link(app_url, None),
        "unsubscribe_url": unsubscribe_url,
    }
    return _event_message(event, "resolution", context, to=to, from_email=from_email,
                          from_name=from_name, message_id=message_id, date=date)


def build_digest_email(
    *,
    bucket_priority: str,
    events: list[tuple[Event, str]],
    to: str,
    from_email: str,
    from_name: str,
    message_id: str,
    app_url: str,
    link_path: str | None = None,
    unsubscribe_url: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """One digest email listing ``events`` (pairs of event and rendered title) for ``to``.

    Events are grouped by priority (most urgent first), then by category, each group with
    its count, oldest event first within a group. Raises ``ValueError`` for an empty list
    or an address that is not one valid address.
    """
    if not events:
        raise ValueError("a digest email needs at least one event")
    count = len(events)
    noun = "notification" if count == 1 else "notifications"
    subject = f"Datafi digest: {count} {noun} ({header_text(bucket_priority)})"
    context = {
        "subject": subject,
        "count": count,
        "noun": noun,
        "bucket_priority": bucket_priority,
        "priority_label": priority_label(bucket_priority),
        "priority_color": priority_color(bucket_priority),
        "groups": _digest_groups(events),
        "link": _link(app_url, link_path),
        "unsubscribe_url": unsubscribe_url,
    }
    return assemble_message(
        subject=subject, bodies=render_bodies("digest", context), to=to, from_email=from_email,
        from_name=from_name, message_id=message_id, datafi_event="digest",
        priority=bucket_priority, unsubscribe_url=unsubscribe_url, date=date,
    )


def build_test_email(*, to: str, from_email: str, from_name: str, message_id: str,
                     server: str) -> EmailMessage:
    """The short message Send Test Email sends to ``to`` through ``server`` ("host:port")."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = _address(from_email, display_name=from_name, role="from address")
    msg["To"] = _address(to, role="recipient address")
    msg["Subject"] = "Datafi test email"
    msg["Date"] = timezone.now()
    msg["Message-ID"] = header_text(message_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("This is a test email from Datafi Events & Notifications.\n\n"
                    f"It was sent through {header_text(server)}. Email settings work.\n")
    msg.add_alternative("<p>This is a test email from <strong>Datafi Events &amp; "
                        "Notifications</strong>.</p><p>Email settings work.</p>\n",
                        subtype="html")
    return msg


# --- the message ---------------------------------------------------------------------------

def render_bodies(template: str, context: dict) -> tuple[str, str]:
    """The text and the HTML body of ``templates/emails/<template>``."""
    return (_render(f"emails/{template}.txt", context, autoescape=False),
            _render(f"emails/{template}.html", context, autoescape=True))


def assemble_message(
    *, subject: str, bodies: tuple[str, str], to: str, from_email: str, from_name: str,
    message_id: str, datafi_event: str, priority: str, unsubscribe_url: str | None,
    date: datetime | None,
) -> EmailMessage:
    """Every message's headers and its two ``bodies`` (text, then the HTML alternative)."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = _address(from_email, display_name=from_name, role="from address")
    msg["To"] = _address(to, role="recipient address")
    msg["Subject"] = subject_text(subject)
    msg["Date"] = date or timezone.now()
    msg["Message-ID"] = header_text(message_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Datafi-Event"] = header_text(datafi_event)
    msg["X-Datafi-Priority"] = header_text(priority)
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{header_text(unsubscribe_url)}>"
    msg.set_content(bodies[0], cte="quoted-printable")
    msg.add_alternative(bodies[1], subtype="html", cte="quoted-printable")
    return msg


def _event_message(event: Event, template: str, context: dict, *, to: str, from_email: str,
                   from_name: str, message_id: str, date: datetime | None) -> EmailMessage:
    """One event's message from ``template`` and ``context`` (its subject and
    unsubscribe_url included)."""
    return assemble_message(
        subject=context["subject"], bodies=render_bodies(template, context), to=to,
        from_email=from_email, from_name=from_name, message_id=message_id,
        datafi_event=event.event_type.key, priority=event.priority,
        unsubscribe_url=context["unsubscribe_url"], date=date,
    )


def check_address(value: str, *, role: str) -> Address:
    """``value`` as one valid address; raises ValueError naming ``role`` otherwise."""
    return _address(value, role=role)


def _address(value: str, *, display_name: str = "", role: str) -> Address:
    addr_spec = header_text(value)
    try:
        return Address(display_name=header_text(display_name), addr_spec=addr_spec)
    except (ValueError, HeaderParseError, IndexError) as exc:
        raise ValueError(f"{role} {addr_spec!r} is not one valid email address: {exc}") from None


def subject_text(subject: str) -> str:
    """The Subject header's text: one line, at most ``MAX_SUBJECT_CHARS``."""
    subject = header_text(subject)
    if len(subject) > MAX_SUBJECT_CHARS:
        subject = subject[: MAX_SUBJECT_CHARS - 1].rstrip() + "\u2026"
    return subject


def _render(name: str, context: dict, *, autoescape: bool) -> str:
    """Render ``name`` from the project's templates with autoescaping set explicitly."""
    body = Engine.get_default().get_template(name).render(Context(context, autoescape=autoescape))
    lines = [line.rstrip() for line in body.strip().splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)) + "\n"


# --- context -------------------------------------------------------------------------------

def _event_context(event: Event, title: str) -> dict:
    event_type = event.event_type
    workspace = event.workspace
    return {
        "title": title,
        "priority": event.priority,
        "priority_label": priority_label(event.priority),
        "priority_color": priority_color(event.priority),
        "event_type_label": event_type.label,
        "event_type_key": event_type.key,
        "category": event_type.category.name,
        "workspace_name": workspace.name if workspace else "",
        "workspace_id": workspace.public_id if workspace else "",
        "occurred_at": _utc(event.occurred_at),
    }


def _payload_fields(payload: Any) -> list[dict[str, str]]:
    """Every payload field as text: strings as they are, anything else as compact JSON."""
    if not isinstance(payload, dict):
        return [] if payload in (None, "", []) else [_field("payload", payload)]
    return [_field(key, value)
            for key, value in sorted(payload.items(), key=lambda item: str(item[0]))]


def _field(name: Any, value: Any) -> dict[str, str]:
    text = _value(value)
    # text_value: continuation lines indented under the field in the text body.
    return {"name": _body_text(name), "value": text, "text_value": text.replace("\n", "\n    ")}


def _value(value: Any) -> str:
    if isinstance(value, str):
        return _body_text(value)
    return _body_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                                 sort_keys=True, default=str))


def _digest_groups(events: list[tuple[Event, str]]) -> list[dict]:
    by_priority: dict[str, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for event, title in events:
        category = event.event_type.category
        item = _event_context(event, header_text(title) or event.event_type.label)
        item["sort_key"] = event.occurred_at
        by_priority[event.priority][(category.position, category.name)].append(item)

    def priority_rank(priority: str) -> tuple[int, str]:
        if priority in Priority.VALUES:
            return Priority.VALUES.index(priority), priority
        return len(Priority.VALUES), priority

    groups = []
    for priority in sorted(by_priority, key=priority_rank):
        categories = [
            {"name": name, "count": len(items),
             "items": sorted(items, key=lambda item: item["sort_key"])}
            for (_, name), items in sorted(by_priority[priority].items())
        ]
        groups.append({
            "priority": priority,
            "label": priority_label(priority),
            "color": priority_color(priority),
            "count": sum(category["count"] for category in categories),
            "categories": categories,
        })
    return groups


def _link(app_url: str, link_path: str | None) -> str:
    base = header_text(app_url).rstrip("/")
    if not link_path:
        return base + "/"
    path = header_text(link_path)
    return f"{base}{path if path.startswith('/') else '/' + path}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _body_text(value: Any) -> str:
    """Text for a body: line breaks kept (as ``\\n``), other control characters dropped."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        char for char in text if char in "\n\t" or not _is_break(char)
    )


def _is_break(char: str) -> bool:
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}
