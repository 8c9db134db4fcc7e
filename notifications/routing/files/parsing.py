"""A routing file's entries, checked whole before anything is applied.

    routing:
      <category slug>:
        channels: [...]            # the category's rule (optional)
        <event name>: {channels, priority, emails, group_by, repeat_interval_minutes,
                       resolves, escalate, notify_resolved}
    inhibit:                       # optional: the inhibit rules, as a list
      - {source_event_type, target_event_types, target_categories, equal, comment}
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from channels_app.backends import ChannelListError, check_channel_list
from events.catalog import Priority
from events.models import EventType
from events.validators import validate_event_type_keys, validate_group_by

from ...models import (
    InhibitRule,
    normalize_escalation,
    validate_email_list,
    validate_escalation,
)
from ...services.incidents import INHIBIT_KEYS
from .reading import RoutingFileError, excerpt, quote

#: The rule's settings; the others set the event type.
RULE_KEYS = ("channels", "emails", "escalate", "notify_resolved")
EVENT_TYPE_KEYS = ("priority", "group_by", "repeat_interval_minutes", "resolves")
SETTING_KEYS = (*RULE_KEYS, *EVENT_TYPE_KEYS)
TOP_LEVEL_KEYS = ("routing", "inhibit")
INHIBIT_MAX = 200
COMMENT_MAX = InhibitRule._meta.get_field("comment").max_length


_LIST = {"type": "array", "items": {"type": "string"}}
_RULE = {"channels": _LIST, "emails": _LIST, "notify_resolved": {"type": "boolean"},
         "escalate": {"type": "object", "additionalProperties": False,
                      "required": ["after_minutes", "channels"],
                      "properties": {"after_minutes": {"type": "integer"}, "channels": _LIST,
                                     "emails": _LIST}}}
_EVENT_TYPE = {"type": "object", "additionalProperties": False, "properties": {
    **_RULE, "priority": {"type": "string"}, "group_by": _LIST,
    "repeat_interval_minutes": {"type": "integer"}, "resolves": _LIST}}
#: A routing file as JSON Schema (what GET /api/routing/export/ answers, as the YAML reads).
ROUTING_FILE = {
    "type": "object", "required": ["routing"], "additionalProperties": False,
    "description": "A routing file (README, \"Routing files\"): per category slug its rule "
                   "and, per event name, the event type's settings; the inhibit rules.",
    "properties": {
        "routing": {"type": "object", "additionalProperties": {
            "type": "object", "properties": _RULE, "additionalProperties": _EVENT_TYPE}},
        "inhibit": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["source_event_type"],
            "properties": {"source_event_type": {"type": "string"},
                           "target_event_types": _LIST, "target_categories": _LIST,
                           "equal": _LIST, "comment": {"type": "string"}}}}}}


@dataclass
class Entry:
    path: str
    channels: list[str] | None = None
    priority: str | None = None
    emails: list[str] | None = None
    escalate: dict | None = None
    notify_resolved: bool | None = None
    group_by: list[str] | None = None
    repeat_interval_minutes: int | None = None
    resolves: list[str] | None = None

    def event_type_settings(self) -> dict:
        """Grouping and resolution as ``event_type_update`` takes them (not the priority)."""
        return {name: getattr(self, name)
                for name in ("group_by", "repeat_interval_minutes", "resolves")
                if getattr(self, name) is not None}

    def rule_settings(self) -> dict:
        """The rule this entry describes, whole: what it leaves out is off."""
        return {"channels": self.channels, "extra_emails": self.emails or [],
                "escalate": normalize_escalation(self.escalate),
                "notify_resolved": bool(self.notify_resolved)}


@dataclass
class Document:
    category_entries: list
    event_entries: list
    inhibit: list[dict] | None  # None: the file does not mention inhibit rules


def parse(document, categories, event_types) -> Document:
    if not isinstance(document, dict) or "routing" not in document:
        raise RoutingFileError("routing", "missing: the file must start with a 'routing:' key")
    extra = [key for key in document if key not in TOP_LEVEL_KEYS]
    if extra:
        raise RoutingFileError(excerpt(extra[0]), "unknown top-level key; only "
                                                  f"{' and '.join(TOP_LEVEL_KEYS)} are allowed")
    routing = document["routing"] or {}
    if not isinstance(routing, dict):
        raise RoutingFileError("routing", "must be a mapping of category slugs")

    category_entries, event_entries = [], []
    for slug, body in routing.items():
        path = f"routing.{excerpt(slug)}"
        category = categories.get(slug) if isinstance(slug, str) else None
        if category is None:
            raise RoutingFileError(path, f"unknown category (known: {', '.join(categories)})")
        if not isinstance(body, dict):
            raise RoutingFileError(path, "must be a mapping of event names")
        category_settings = {k: v for k, v in body.items() if k in SETTING_KEYS}
        if category_settings:
            for key in EVENT_TYPE_KEYS:
                if key in category_settings:
                    raise RoutingFileError(f"{path}.{key}",
                                           f"{key} is set per event type, not per category")
            category_entries.append((category, _entry(path, category_settings)))
        for name, settings in body.items():
            if name in SETTING_KEYS:
                continue
            event_path = f"{path}.{excerpt(name)}"
            event_type = event_types.get((category.pk, name))
            if event_type is None:
                raise RoutingFileError(event_path, "unknown event")
            if not isinstance(settings, dict) or not settings:
                raise RoutingFileError(event_path,
                                       "must set channels, priority and/or grouping")
            event_entries.append((event_type, _entry(event_path, settings)))
    inhibit = _inhibit(document["inhibit"]) if "inhibit" in document else None
    return Document(category_entries, event_entries, inhibit)


def _entry(path: str, settings: dict) -> Entry:
    entry = Entry(path=path)
    for key, value in settings.items():
        key_path = f"{path}.{excerpt(key)}"
        if key == "channels":
            try:
                entry.channels = check_channel_list(value)
            except ChannelListError as exc:
                where = key_path if exc.index is None else f"{key_path}[{exc.index}]"
                raise RoutingFileError(where, exc.message) from None
        elif key == "priority":
            if value not in Priority.VALUES:
                raise RoutingFileError(
                    key_path,
                    f"unknown priority {quote(value)} (known: {', '.join(Priority.VALUES)})",
                )
            entry.priority = value
        elif key == "notify_resolved":
            if not isinstance(value, bool):
                raise RoutingFileError(key_path, "true or false")
            entry.notify_resolved = value
        elif key == "repeat_interval_minutes":
            _check(key_path, _minutes, value)
            entry.repeat_interval_minutes = value
        elif key in VALIDATORS:
            _check(key_path, VALIDATORS[key], value)
            setattr(entry, key, dict(value) if isinstance(value, dict) else list(value))
        else:
            raise RoutingFileError(key_path, f"unknown setting (known: {', '.join(SETTING_KEYS)})")
    for key in ("emails", "escalate", "notify_resolved"):
        if getattr(entry, key) is not None and entry.channels is None:
            raise RoutingFileError(f"{path}.{key}", "needs channels in the same entry")
    return entry


def _minutes(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("Give a whole number of minutes.")
    EventType._meta.get_field("repeat_interval_minutes").run_validators(value)


VALIDATORS = {"emails": validate_email_list, "group_by": validate_group_by,
              "resolves": validate_event_type_keys, "escalate": validate_escalation}


def _check(path: str, validator, value) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise RoutingFileError(path, " ".join(exc.messages)) from None


def _inhibit(value) -> list[dict]:
    """The inhibit rules: a list of mappings with the REST API's fields. That the event
    types and categories exist is checked when they are saved (the one check)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RoutingFileError("inhibit", "must be a list of inhibit rules")
    if len(value) > INHIBIT_MAX:
        raise RoutingFileError("inhibit", f"at most {INHIBIT_MAX} inhibit rules")
    rules = []
    for index, item in enumerate(value):
        path = f"inhibit[{index}]"
        if not isinstance(item, dict):
            raise RoutingFileError(path, "must be a mapping")
        unknown = [key for key in item if key not in INHIBIT_KEYS]
        if unknown:
            raise RoutingFileError(f"{path}.{excerpt(unknown[0])}",
                                   f"unknown setting (known: {', '.join(INHIBIT_KEYS)})")
        if not isinstance(item.get("source_event_type"), str):
            raise RoutingFileError(f"{path}.source_event_type", "an event type key is required")
        rule = {key: item.get(key) for key in INHIBIT_KEYS}
        for key in ("target_event_types", "target_categories", "equal"):
            rule[key] = [] if rule[key] is None else rule[key]
            _check(f"{path}.{key}", InhibitRule._meta.get_field(key).run_validators, rule[key])
        rule["comment"] = rule["comment"] or ""
        if not isinstance(rule["comment"], str) or len(rule["comment"]) > COMMENT_MAX:
            raise RoutingFileError(f"{path}.comment", f"text of at most {COMMENT_MAX} characters")
        rules.append(rule)
    return rules
