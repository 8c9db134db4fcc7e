"""The routing file: the seed's YAML format, imported atomically and exported verbatim.

    routing:
      data_sources:            # category slug
        channels: [in_app]     # optional: the category's rule
        connection_lost:       # event name within the category
          channels: [in_app, email, webhook]
          priority: critical   # sets the event type's priority override
          emails: [oncall@example.com]   # optional distribution lists for email
          group_by: [datasource_name]    # repeats with equal values fold into the first
          repeat_interval_minutes: 30    # for this long (default 60)

Import applies the whole file or nothing. With ``replace``, the file is the complete
configuration: rules and priority overrides it does not mention are removed.

Whatever the input, an import costs bounded time and memory and answers a short error:
at most ``DATAFI_MAX_ROUTING_FILE_BYTES`` (checked before parsing), UTF-8, no anchors or
aliases (so no "billion laughs"), at most ``MAX_DEPTH`` levels of nesting, plain keys only;
messages quote at most a short excerpt of the file.
"""

from collections.abc import Hashable
from dataclasses import dataclass

import yaml
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction

from channels_app.backends import ChannelListError, check_channel_list
from core.errors import ApplicationError
from events.catalog import Priority
from events.models import Category, EventType
from events.services.catalog import event_type_update
from events.validators import validate_group_by

from ..models import RoutingRule, validate_email_list
from ..services.rules import routing_rule_delete, routing_rule_set

SETTING_KEYS = ("channels", "priority", "emails", "group_by", "repeat_interval_minutes")
#: What an event type sets, not a category.
EVENT_TYPE_KEYS = ("priority", "group_by", "repeat_interval_minutes")
DEFAULT_REPEAT_INTERVAL = EventType._meta.get_field("repeat_interval_minutes").default
#: routing > category > event > setting > list is 5 levels; this leaves room, nothing more.
MAX_DEPTH = 10


def _excerpt(value, limit: int = 40) -> str:
    """``value`` for an error message: its repr, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(value, limit: int = 40) -> str:
    return repr(_excerpt(value, limit)) if isinstance(value, str) else _excerpt(value, limit)


class RoutingFileError(ApplicationError):
    """A routing file was refused; ``path`` is the key path of the offending entry."""

    field = "yaml"

    def __init__(self, path: str, problem: str, *, field: str | None = None):
        path, problem = _excerpt(path, 160), _excerpt(problem, 300)  # never the whole file
        super().__init__(f"{path}: {problem}", field=field)
        self.path = path
        self.problem = problem

    def as_data(self) -> dict:
        return {**super().as_data(), "path": self.path}


@dataclass
class _Entry:
    path: str
    channels: list[str] | None = None
    priority: str | None = None
    emails: list[str] | None = None
    group_by: list[str] | None = None
    repeat_interval_minutes: int | None = None

    def grouping(self) -> dict:
        """The grouping settings the entry gives, as ``event_type_update`` takes them."""
        return {name: getattr(self, name) for name in ("group_by", "repeat_interval_minutes")
                if getattr(self, name) is not None}


@dataclass
class ImportResult:
    rules_changed: int
    priorities_changed: int
    removed: int
    grouping_changed: int = 0

    def summary(self) -> str:
        grouping = (f" and {self.grouping_changed} groupings" if self.grouping_changed
                    else "")
        return (f"Routing imported: {self.rules_changed} rules and {self.priorities_changed} "
                f"priority overrides{grouping} changed, {self.removed} removed.")


def routing_import(text: str | bytes, *, replace: bool = False) -> ImportResult:
    """Validate the whole file, then apply it in one transaction; raises RoutingFileError.

    ``text`` is the file's text, or its bytes (which must be UTF-8).
    """
    text = _checked_text(text)
    categories = {c.slug: c for c in Category.objects.all()}
    event_types = {(t.category_id, t.name): t for t in EventType.objects.all()}
    category_entries, event_entries = _parse(text, categories, event_types)

    with transaction.atomic():
        removed = 0
        if replace:
            keep_categories = [c.pk for c, e in category_entries if e.channels is not None]
            keep_types = [t.pk for t, e in event_entries if e.channels is not None]
            unmentioned = list(
                RoutingRule.objects.filter(category__isnull=False).exclude(
                    category__in=keep_categories)
                | RoutingRule.objects.filter(event_type__isnull=False).exclude(
                    event_type__in=keep_types)
            )
            for rule in unmentioned:
                routing_rule_delete(rule=rule)
            removed += len(unmentioned)
            keep_priorities = [t.pk for t, e in event_entries if e.priority is not None]
            for event_type in EventType.objects.exclude(priority_override="").exclude(
                    pk__in=keep_priorities):
                event_type_update(event_type=event_type, priority_override="")
                removed += 1
            keep_grouping = [t.pk for t, e in event_entries if e.grouping()]
            for event_type in (EventType.objects.exclude(pk__in=keep_grouping).exclude(
                    group_by=[], repeat_interval_minutes=DEFAULT_REPEAT_INTERVAL)):
                event_type_update(event_type=event_type, group_by=[],
                                  repeat_interval_minutes=DEFAULT_REPEAT_INTERVAL)
                removed += 1
        rules = {(r.category_id, r.event_type_id): r for r in RoutingRule.objects.all()}
        rules_changed = priorities_changed = grouping_changed = 0
        for target, entry in [*category_entries, *event_entries]:
            if entry.channels is not None:
                is_category = isinstance(target, Category)
                key = (target.pk, None) if is_category else (None, target.pk)
                rule = rules.get(key)
                emails = entry.emails or []
                if rule is None or rule.channels != entry.channels or rule.extra_emails != emails:
                    routing_rule_set(  # unchanged rules keep their updated_at
                        rule=rule, channels=entry.channels, extra_emails=emails,
                        category=target if is_category else None,
                        event_type=None if is_category else target,
                    )
                    rules_changed += 1
            if entry.priority is not None and target.priority_override != entry.priority:
                event_type_update(event_type=target, priority_override=entry.priority)
                priorities_changed += 1
            grouping = entry.grouping()
            if any(getattr(target, name) != value for name, value in grouping.items()):
                event_type_update(event_type=target, **grouping)
                grouping_changed += 1
    return ImportResult(rules_changed=rules_changed, priorities_changed=priorities_changed,
                        removed=removed, grouping_changed=grouping_changed)


def routing_file_read(upload, *, field: str | None = "file") -> bytes:
    """The bytes of an uploaded routing file, reading one byte past the size limit at most;
    raises ``RoutingFileError`` (naming ``field``) for a larger file."""
    data = upload.read(django_settings.DATAFI_MAX_ROUTING_FILE_BYTES + 1)
    _check_size(len(data), field=field)
    return data


def _check_size(size: int, *, field: str | None = None) -> None:
    """The one check of a routing file's size (REST, the admin, the command)."""
    limit = django_settings.DATAFI_MAX_ROUTING_FILE_BYTES
    if size > limit:
        raise RoutingFileError("(file)", f"larger than the limit of {limit // 1024} KiB",
                               field=field)


def _checked_text(text: str | bytes) -> str:
    """The file's text: at most ``DATAFI_MAX_ROUTING_FILE_BYTES``, UTF-8."""
    _check_size(len(text) if isinstance(text, bytes)
                else len(text.encode("utf-8", "surrogatepass")))
    if isinstance(text, bytes):
        try:
            return text.decode()
        except UnicodeDecodeError as exc:
            raise RoutingFileError(
                "(file)", f"not UTF-8 text (invalid byte at offset {exc.start})"
            ) from None
    return text


def _parse(text, categories, event_types):
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the document"
        problem = _excerpt(getattr(exc, "problem", None) or str(exc), 160)
        raise RoutingFileError("(yaml)", f"malformed YAML at {where}: {problem}") from None
    if not isinstance(document, dict) or "routing" not in document:
        raise RoutingFileError("routing", "missing: the file must start with a 'routing:' key")
    extra = [key for key in document if key != "routing"]
    if extra:
        raise RoutingFileError(_excerpt(extra[0]),
                               "unknown top-level key; only 'routing' is allowed")
    routing = document["routing"] or {}
    if not isinstance(routing, dict):
        raise RoutingFileError("routing", "must be a mapping of category slugs")

    category_entries, event_entries = [], []
    for slug, body in routing.items():
        path = f"routing.{_excerpt(slug)}"
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
            event_path = f"{path}.{_excerpt(name)}"
            event_type = event_types.get((category.pk, name))
            if event_type is None:
                raise RoutingFileError(event_path, "unknown event")
            if not isinstance(settings, dict) or not settings:
                raise RoutingFileError(event_path,
                                       "must set channels, priority and/or grouping")
            event_entries.append((event_type, _entry(event_path, settings)))
    return category_entries, event_entries


def _entry(path: str, settings: dict) -> _Entry:
    entry = _Entry(path=path)
    for key, value in settings.items():
        key_path = f"{path}.{_excerpt(key)}"
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
                    f"unknown priority {_quote(value)} (known: {', '.join(Priority.VALUES)})",
                )
            entry.priority = value
        elif key == "emails":
            try:
                validate_email_list(value)
            except ValidationError as exc:
                raise RoutingFileError(key_path, " ".join(exc.messages)) from None
            entry.emails = list(value)
        elif key == "group_by":
            try:
                validate_group_by(value)
            except ValidationError as exc:
                raise RoutingFileError(key_path, " ".join(exc.messages)) from None
            entry.group_by = list(value)
        elif key == "repeat_interval_minutes":
            field = EventType._meta.get_field("repeat_interval_minutes")
            try:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValidationError("Give a whole number of minutes.")
                field.run_validators(value)
            except ValidationError as exc:
                raise RoutingFileError(key_path, " ".join(exc.messages)) from None
            entry.repeat_interval_minutes = value
        else:
            raise RoutingFileError(key_path, f"unknown setting (known: {', '.join(SETTING_KEYS)})")
    if entry.emails is not None and entry.channels is None:
        raise RoutingFileError(f"{path}.emails", "needs channels in the same entry")
    return entry


def routing_export() -> str:
    """The current rules, priority overrides and groupings in the routing file format."""
    routing: dict[str, dict] = {}
    categories = list(Category.objects.all())
    rules = {(r.category_id, r.event_type_id): r for r in RoutingRule.objects.all()}
    event_types = EventType.objects.select_related("category").order_by("category__position", "pk")
    by_category: dict[int, dict] = {}
    for event_type in event_types:
        rule = rules.get((None, event_type.pk))
        settings = {}
        if rule is not None:
            settings.update(_rule_settings(rule))
        if event_type.priority_override:
            settings["priority"] = event_type.priority_override
        if event_type.group_by:
            settings["group_by"] = list(event_type.group_by)
        if event_type.repeat_interval_minutes != DEFAULT_REPEAT_INTERVAL:
            settings["repeat_interval_minutes"] = event_type.repeat_interval_minutes
        if settings:
            by_category.setdefault(event_type.category_id, {})[event_type.name] = settings
    for category in categories:
        body = {}
        rule = rules.get((category.pk, None))
        if rule is not None:
            body.update(_rule_settings(rule))
        body.update(by_category.get(category.pk, {}))
        if body:
            routing[category.slug] = body
    header = "# Datafi routing configuration (manage.py export_routing)\n"
    return header + yaml.dump({"routing": routing}, Dumper=_FlowListDumper, sort_keys=False,
                              default_flow_style=None)


def _rule_settings(rule: RoutingRule) -> dict:
    settings = {"channels": list(rule.channels)}
    if rule.extra_emails:
        settings["emails"] = list(rule.extra_emails)
    return settings


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader for routing files: what they never need is refused before it costs.

    No anchors or aliases (an alias bomb expands a few hundred bytes into gigabytes), at
    most ``MAX_DEPTH`` levels (composing recurses), keys that are plain values, and no key
    given twice in one mapping (instead of silently keeping the last).
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (& and *) are not allowed in routing files",
                event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or a mapping",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_quote(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _FlowListDumper(yaml.SafeDumper):
    """Lists inline (``[in_app, email]``) like the seed; mappings in block style."""


_FlowListDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=True)
)
_FlowListDumper.add_representer(
    dict, lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=False)
)
