"""What a webhook receiver gets: bodies built from events, separate from sending them.

Formats:

- ``datafi``: the seed's shape, ``{"event_type", "priority", "timestamp", "workspace_id",
  "payload"}`` (timestamp: when the event occurred, UTC, ISO 8601 with ``Z``); a digest is
  ``event_type: "digest"``, the bucket's priority and ``payload: {"count", "events"}``.
- ``slack``: an incoming-webhook message, the priority's color on an attachment with the
  title.
- ``pagerduty``: an Events API v2 ``trigger`` with ``routing_key``, severity mapped from the
  priority and ``dedup_key`` from the event (so retries and replays make one incident).

Each builder needs its events with event type, category and workspace loaded; none queries.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from events.catalog import Priority

DATAFI, SLACK, PAGERDUTY = "datafi", "slack", "pagerduty"
FORMATS = (DATAFI, SLACK, PAGERDUTY)
DIGEST_EVENT_TYPE = "digest"

#: Datafi priority -> PagerDuty Events API v2 severity.
PAGERDUTY_SEVERITY = {
    Priority.CRITICAL: "critical",
    Priority.HIGH: "error",
    Priority.MEDIUM: "warning",
    Priority.LOW: "info",
    Priority.INFO: "info",
}
SLACK_DIGEST_MAX_ITEMS = 20  # Slack shows at most this many attachments well


def utc_timestamp(moment: datetime) -> str:
    """``2025-01-15T14:30:00Z``: UTC, ISO 8601, ``Z``, whole seconds."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def encode(body: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _workspace_id(event) -> str | None:
    return event.workspace.public_id if event.workspace_id else None


def build_event_payload(event) -> dict[str, Any]:
    """The seed's body for one event."""
    return {
        "event_type": event.event_type.key,
        "priority": event.priority,
        "timestamp": utc_timestamp(event.occurred_at),
        "workspace_id": _workspace_id(event),
        "payload": event.payload,
    }


def build_digest_payload(*, priority: str, events: Sequence, sent_at: datetime
                         ) -> dict[str, Any]:
    """The body of a digest: ``events`` (oldest first) as single-event bodies.

    ``timestamp`` is when the digest was sent; ``workspace_id`` is the events' workspace
    when they share one, else null.
    """
    bodies = [build_event_payload(event) for event in events]
    workspaces = {body["workspace_id"] for body in bodies}
    return {
        "event_type": DIGEST_EVENT_TYPE,
        "priority": priority,
        "timestamp": utc_timestamp(sent_at),
        "workspace_id": workspaces.pop() if len(workspaces) == 1 else None,
        "payload": {"count": len(bodies), "events": bodies},
    }


# --- Slack --------------------------------------------------------------------------------

def _slack_attachment(event, title: str) -> dict[str, Any]:
    fields = [{"title": "Priority", "value": Priority.LABELS.get(event.priority), "short": True},
              {"title": "Event type", "value": event.event_type.key, "short": True}]
    if event.workspace_id:
        fields.append({"title": "Workspace", "value": event.workspace.name, "short": True})
    for key, value in sorted(event.payload.items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        fields.append({"title": str(key), "value": text[:500], "short": len(text) < 40})
    return {
        "color": Priority.BADGE_COLORS[event.priority],
        "title": title,
        "fallback": title,
        "fields": fields,
        "footer": "Datafi",
        "ts": int(event.occurred_at.timestamp()),
    }


def build_slack_event_payload(event, *, title: str) -> dict[str, Any]:
    """A Slack incoming-webhook message for one event: the title, in the priority's color."""
    label = Priority.LABELS.get(event.priority, event.priority)
    return {"text": f"[{label}] {title}", "attachments": [_slack_attachment(event, title)]}


def build_slack_digest_payload(*, priority: str, events: Sequence[tuple[Any, str]]
                               ) -> dict[str, Any]:
    """One Slack message listing a digest's events (the first 20 as attachments)."""
    count = len(events)
    noun = "notification" if count == 1 else "notifications"
    label = Priority.LABELS.get(priority, priority)
    attachments = [_slack_attachment(event, title)
                   for event, title in events[:SLACK_DIGEST_MAX_ITEMS]]
    if count > SLACK_DIGEST_MAX_ITEMS:
        attachments.append({"color": Priority.BADGE_COLORS[priority],
                            "text": f"... and {count - SLACK_DIGEST_MAX_ITEMS} more"})
    return {"text": f"Datafi digest: {count} {noun} ({label.lower()})",
            "attachments": attachments}


# --- PagerDuty ----------------------------------------------------------------------------

def build_pagerduty_event_payload(event, *, title: str, routing_key: str) -> dict[str, Any]:
    """An Events API v2 trigger; ``dedup_key`` is the event's id."""
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f"datafi-{event.pk}",
        "payload": {
            "summary": title[:1024],
            "source": _workspace_id(event) or "datafi",
            "severity": PAGERDUTY_SEVERITY[event.priority],
            "timestamp": utc_timestamp(event.occurred_at),
            "component": event.event_type.category.slug,
            "group": _workspace_id(event) or "platform",
            "class": event.event_type.key,
            "custom_details": event.payload,
        },
    }


def build_pagerduty_digest_payload(*, priority: str, events: Sequence[tuple[Any, str]],
                                   routing_key: str, digest_id, sent_at: datetime
                                   ) -> dict[str, Any]:
    """One trigger for a digest; ``dedup_key`` is the digest's id."""
    count = len(events)
    noun = "notification" if count == 1 else "notifications"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f"datafi-digest-{digest_id}",
        "payload": {
            "summary": f"Datafi digest: {count} {priority} {noun}",
            "source": "datafi",
            "severity": PAGERDUTY_SEVERITY[priority],
            "timestamp": utc_timestamp(sent_at),
            "class": DIGEST_EVENT_TYPE,
            "custom_details": {"count": count,
                               "events": [{"title": title, **build_event_payload(event)}
                                          for event, title in events]},
        },
    }


def build_payload(*, format: str, event, title: str, routing_key: str = "") -> dict[str, Any]:
    """One event's body in ``format``."""
    if format == SLACK:
        return build_slack_event_payload(event, title=title)
    if format == PAGERDUTY:
        return build_pagerduty_event_payload(event, title=title, routing_key=routing_key)
    return build_event_payload(event)


#: The formats whose receivers are told of a resolution (``build_resolution``).
RESOLUTION_FORMATS = (PAGERDUTY, SLACK)


def build_resolution(*, format: str, event, title: str, routing_key: str = ""
                     ) -> dict[str, Any] | None:
    """What tells a receiver in ``format`` that ``event`` is resolved: PagerDuty resolves the
    incident its trigger opened (same ``dedup_key``), Slack gets "Resolved: <title>"; None for
    ``datafi``, whose receivers get the resolving event itself."""
    if format == PAGERDUTY:
        return {"routing_key": routing_key, "event_action": "resolve",
                "dedup_key": f"datafi-{event.pk}"}
    if format == SLACK:
        resolved = f"Resolved: {title}"
        return {"text": resolved, "attachments": [{
            "color": Priority.RESOLVED_COLOR, "title": resolved, "fallback": resolved,
            "footer": "Datafi",
            "ts": int((event.resolved_at or event.occurred_at).timestamp())}]}
    return None


def build_digest(*, format: str, priority: str, events: Sequence[tuple[Any, str]],
                 sent_at: datetime, digest_id, routing_key: str = "") -> dict[str, Any]:
    """A digest's body in ``format``; ``events`` are (event, title) pairs, oldest first."""
    if format == SLACK:
        return build_slack_digest_payload(priority=priority, events=events)
    if format == PAGERDUTY:
        return build_pagerduty_digest_payload(priority=priority, events=events,
                                              routing_key=routing_key, digest_id=digest_id,
                                              sent_at=sent_at)
    return build_digest_payload(priority=priority, events=[event for event, _ in events],
                                sent_at=sent_at)
