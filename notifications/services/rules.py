"""Routing rules: the one way they are written."""

from core.errors import ApplicationError, Conflict, full_clean
from events.models import Category, EventType

from ..models import RoutingRule, normalize_escalation


def routing_rule_set(
    *,
    channels: list[str],
    event_type: EventType | None = None,
    category: Category | None = None,
    extra_emails: list[str] | None = None,
    escalate=...,
    notify_resolved: bool | None = None,
    rule: RoutingRule | None = None,
    new: bool = False,
) -> RoutingRule:
    """Set the channels of one event type or one category (exactly one of them).

    Changes ``rule`` (saved or not) when given, target included; otherwise replaces the
    target's rule or creates it (with ``new``, only creates it). Raises ``ApplicationError``
    naming the fields (unknown or missing channels, a bad address), ``Conflict`` for a
    target that has another rule (or one at all, with ``new``). ``extra_emails`` None keeps
    the rule's lists; ``escalate`` (a dict, or None for none) and ``notify_resolved`` are
    kept when not given. The one way routing rules are written.
    """
    if (event_type is None) == (category is None):
        raise ApplicationError("Choose exactly one target: a category or an event type.")
    holder = RoutingRule.objects.filter(event_type=event_type, category=category).first()
    if holder is not None and (new or (rule is not None and rule.pk != holder.pk)):
        field, kind = ("event_type", "event type") if event_type else ("category", "category")
        raise Conflict(f"This {kind} already has a routing rule.", field=field, code="exists")
    rule = rule or holder or RoutingRule()
    rule.event_type, rule.category = event_type, category
    rule.channels = channels
    if extra_emails is not None:
        rule.extra_emails = extra_emails
    if escalate is not ...:
        rule.escalate = escalate
    if notify_resolved is not None:
        rule.notify_resolved = notify_resolved
    full_clean(rule)
    rule.escalate = normalize_escalation(rule.escalate)
    rule.save()
    return rule


def routing_rule_delete(*, rule: RoutingRule) -> None:
    """Remove a rule: its target falls back to the category rule or the priority default."""
    rule.delete()
