"""Exporting the routing configuration as a routing file that imports back unchanged."""

from events.catalog import event_type_setting_defaults
from events.models import Category, EventType

from ...models import InhibitRule, RoutingRule
from .importing import inhibit_rule_as_dict
from .reading import dump

HEADER = "# Datafi routing configuration (manage.py export_routing)\n"


def routing_export() -> str:
    """The current rules, priority overrides, groupings, resolutions (where they differ from
    their defaults) and inhibit rules in the routing file format."""
    routing: dict[str, dict] = {}
    rules = {(r.category_id, r.event_type_id): r for r in RoutingRule.objects.all()}
    event_types = EventType.objects.select_related("category").order_by("category__position",
                                                                         "pk")
    by_category: dict[int, dict] = {}
    for event_type in event_types:
        rule = rules.get((None, event_type.pk))
        settings = _rule_settings(rule) if rule is not None else {}
        if event_type.priority_override:
            settings["priority"] = event_type.priority_override
        for name, default in event_type_setting_defaults(event_type.key).items():
            value = getattr(event_type, name)
            if value != default:
                settings[name] = list(value) if isinstance(value, list) else value
        if settings:
            by_category.setdefault(event_type.category_id, {})[event_type.name] = settings
    for category in Category.objects.all():
        rule = rules.get((category.pk, None))
        body = _rule_settings(rule) if rule is not None else {}
        body.update(by_category.get(category.pk, {}))
        if body:
            routing[category.slug] = body
    document = {"routing": routing}
    inhibit = [inhibit_rule_as_dict(rule)
               for rule in InhibitRule.objects.select_related("source_event_type")]
    if inhibit:
        document["inhibit"] = [{key: value for key, value in rule.items() if value}
                               for rule in inhibit]
    return HEADER + dump(document)


def _rule_settings(rule: RoutingRule) -> dict:
    settings = {"channels": list(rule.channels)}
    if rule.extra_emails:
        settings["emails"] = list(rule.extra_emails)
    if rule.escalate:
        settings["escalate"] = {key: value for key, value in rule.escalate.items()
                                if value or key != "emails"}
    if rule.notify_resolved:
        settings["notify_resolved"] = True
    return settings
