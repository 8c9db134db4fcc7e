"""Applying a routing file: the whole file or nothing, in one transaction, through the
services that own each row (rules, event types, inhibit rules). Unchanged rows are left
alone, so exporting and importing again changes nothing."""

from dataclasses import dataclass

from django.db import transaction

from core.errors import ApplicationError
from events.catalog import event_type_setting_defaults
from events.models import Category, EventType
from events.services.catalog import event_type_update

from ...models import InhibitRule, RoutingRule
from ...services.incidents import INHIBIT_KEYS, inhibit_rule_delete, inhibit_rule_save
from ...services.rules import routing_rule_delete, routing_rule_set
from .parsing import parse
from .reading import RoutingFileError, checked_text, load

#: What changing inhibit rules takes (an import that would change them).
INHIBIT_PERMISSIONS = ("notifications.add_inhibitrule", "notifications.change_inhibitrule",
                       "notifications.delete_inhibitrule")


@dataclass
class ImportResult:
    rules_changed: int
    priorities_changed: int
    removed: int
    grouping_changed: int = 0
    inhibit_rules_changed: int = 0

    def summary(self) -> str:
        more = "".join(f" and {count} {noun}" for count, noun in (
            (self.grouping_changed, "groupings"),
            (self.inhibit_rules_changed, "inhibit rules")) if count)
        return (f"Routing imported: {self.rules_changed} rules and {self.priorities_changed} "
                f"priority overrides{more} changed, {self.removed} removed.")


def routing_import(text: str | bytes, *, replace: bool = False,
                   inhibit_allowed: bool = True) -> ImportResult:
    """Validate the whole file, then apply it in one transaction; raises RoutingFileError.

    ``text`` is the file's text, or its bytes (which must be UTF-8). With ``replace`` the
    file is the complete configuration: rules, priority overrides and inhibit rules it does
    not mention are removed, groupings and resolutions go back to their defaults (a
    built-in type's definition). Without it, a file that has an ``inhibit`` list
    still sets the inhibit rules to that list (a list has no keys to merge by).
    ``inhibit_allowed`` False (the importer may not change inhibit rules) refuses a file
    that would change them.
    """
    categories = {c.slug: c for c in Category.objects.all()}
    event_types = {(t.category_id, t.name): t for t in EventType.objects.all()}
    document = parse(load(checked_text(text)), categories, event_types)
    result = ImportResult(rules_changed=0, priorities_changed=0, removed=0)
    with transaction.atomic():
        if replace:
            result.removed += _remove_unmentioned(document)
        rules = {(r.category_id, r.event_type_id): r for r in RoutingRule.objects.all()}
        for target, entry in [*document.category_entries, *document.event_entries]:
            if entry.channels is not None:
                is_category = isinstance(target, Category)
                rule = rules.get((target.pk, None) if is_category else (None, target.pk))
                wanted = entry.rule_settings()
                if rule is None or _rule_differs(rule, wanted):
                    routing_rule_set(  # unchanged rules keep their updated_at
                        rule=rule, category=target if is_category else None,
                        event_type=None if is_category else target, **wanted)
                    result.rules_changed += 1
            if entry.priority is not None and target.priority_override != entry.priority:
                event_type_update(event_type=target, priority_override=entry.priority)
                result.priorities_changed += 1
            settings = entry.event_type_settings()
            if any(getattr(target, name) != value for name, value in settings.items()):
                event_type_update(event_type=target, **settings)
                result.grouping_changed += 1
        inhibit = document.inhibit if document.inhibit is not None else ([] if replace
                                                                          else None)
        if inhibit is not None:
            if not inhibit_allowed and _inhibit_changes(inhibit):
                raise RoutingFileError("inhibit", "changing inhibit rules needs the inhibit "
                                                  "rule permissions (add, change, delete)")
            created, deleted = _set_inhibit_rules(inhibit)
            result.inhibit_rules_changed += created
            result.removed += deleted
    return result


def _rule_differs(rule: RoutingRule, wanted: dict) -> bool:
    return any(getattr(rule, name) != value for name, value in wanted.items())


def _remove_unmentioned(document) -> int:
    removed = 0
    keep_categories = [c.pk for c, e in document.category_entries if e.channels is not None]
    keep_types = [t.pk for t, e in document.event_entries if e.channels is not None]
    unmentioned = list(
        RoutingRule.objects.filter(category__isnull=False).exclude(category__in=keep_categories)
        | RoutingRule.objects.filter(event_type__isnull=False).exclude(event_type__in=keep_types)
    )
    for rule in unmentioned:
        routing_rule_delete(rule=rule)
    removed += len(unmentioned)
    keep_priorities = [t.pk for t, e in document.event_entries if e.priority is not None]
    for event_type in EventType.objects.exclude(priority_override="").exclude(
            pk__in=keep_priorities):
        event_type_update(event_type=event_type, priority_override="")
        removed += 1
    settings = {t.pk: e.event_type_settings() for t, e in document.event_entries}
    for event_type in EventType.objects.all():
        defaults = event_type_setting_defaults(event_type.key)
        reset = {name: default for name, default in defaults.items()
                 if name not in settings.get(event_type.pk, {})
                 and getattr(event_type, name) != default}
        if reset:
            event_type_update(event_type=event_type, **reset)
            removed += 1
    return removed


def _set_inhibit_rules(wanted: list[dict]) -> tuple[int, int]:
    """Make the inhibit rules ``wanted``: equal ones are kept (with their ids and authors),
    the others deleted or created. Returns (created, deleted)."""
    existing = list(InhibitRule.objects.select_related("source_event_type"))
    unmatched = {_identity(inhibit_rule_as_dict(rule)): rule for rule in existing}
    created = 0
    for index, values in enumerate(wanted):
        if unmatched.pop(_identity(values), None) is None:
            try:
                inhibit_rule_save(values=values)
            except ApplicationError as exc:  # an unknown event type or category
                raise RoutingFileError(f"inhibit[{index}].{exc.field or 'source_event_type'}",
                                       exc.message) from None
            created += 1
    for rule in unmatched.values():
        inhibit_rule_delete(rule=rule)
    return created, len(unmatched)


def _inhibit_changes(wanted: list[dict]) -> bool:
    existing = sorted(_identity(inhibit_rule_as_dict(rule)) for rule in
                      InhibitRule.objects.select_related("source_event_type"))
    return existing != sorted(_identity(values) for values in wanted)


def inhibit_rule_as_dict(rule: InhibitRule) -> dict:
    """An inhibit rule as the routing file (and REST) writes it."""
    return {"source_event_type": rule.source_event_type.key,
            "target_event_types": list(rule.target_event_types),
            "target_categories": list(rule.target_categories),
            "equal": list(rule.equal), "comment": rule.comment}


def _identity(values: dict) -> tuple:
    return tuple(repr(values.get(key)) for key in INHIBIT_KEYS)
