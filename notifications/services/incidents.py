"""Acknowledging, escalating and resolving events: what each does beyond the event's own
fields (``events.services.lifecycle`` writes those).

- Acknowledge (the bell, the API, a signed email link): the event for everyone; its pending
  escalations are cancelled; every recipient's bell shows who and when.
- Escalate (beat's sweep): an event nobody acknowledged in time goes out again on the
  escalation's channels, marked "Escalated:", exactly once.
- Resolve (by hand, or by an event that resolves it): escalations cancelled, bells updated,
  and the receivers that got it told (a PagerDuty resolve, a Slack "Resolved:", an email
  follow-up where the routing rule asks for it).
"""

import logging
from collections import defaultdict
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from channels_app.backends import get_backend
from core.errors import ApplicationError, Conflict, NotFound, full_clean
from events.models import Category, Event, EventType
from events.services.lifecycle import (
    event_acknowledge,
    events_mark_escalated,
    events_resolve,
)

from ..deliveries.enqueue import deliveries_enqueue
from ..deliveries.send import delivery_recipient
from ..models import Delivery, Escalation, InhibitRule, Notification
from ..routing.audience import audiences_get
from ..routing.rules import routing_get

logger = logging.getLogger(__name__)

ESCALATIONS_PER_SWEEP = 500
#: What a sweep reads of an escalation and its event: what the channels' ``targets`` need.
ESCALATION_FIELDS = ("channels", "emails", "due_at", "event__workspace", "event__priority",
                     "event__recipient_ids", "event__acknowledged_at", "event__resolved_at",
                     "event__event_type__key", "event__event_type__category__slug")


# --- acknowledge --------------------------------------------------------------------------

def notification_acknowledge(*, notification: Notification, user) -> bool:
    """Acknowledge the event of ``notification`` for everyone, by ``user``, and mark their
    copy read. Returns whether this acknowledged it (False: someone did first)."""
    if notification.event_id is None:
        raise Conflict("A digest lists several events: acknowledge one from its own "
                       "notification.", code="digest")
    with transaction.atomic():
        acknowledged = event_acknowledge(event_id=notification.event_id, user=user)
        _acknowledged(notification.event_id)
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now())
    return acknowledged


def delivery_acknowledge(*, delivery: Delivery) -> bool:
    """Acknowledge the event of ``delivery`` (its signed email link was used): by its member,
    or by the address for a distribution list."""
    if delivery.event_id is None:
        raise NotFound("This link does not name an event.")
    user = delivery.user
    with transaction.atomic():
        acknowledged = event_acknowledge(event_id=delivery.event_id, user=user,
                                         name=user.get_username() if user else delivery.target)
        _acknowledged(delivery.event_id)
    return acknowledged


def _acknowledged(event_id) -> None:
    escalations_cancel(event_ids=[event_id])
    _touch([event_id])


# --- escalate -----------------------------------------------------------------------------

def escalations_cancel(*, event_ids) -> int:
    return Escalation.objects.filter(event_id__in=list(event_ids),
                                     status=Escalation.Status.PENDING).update(
        status=Escalation.Status.CANCELLED, finished_at=timezone.now())


def escalations_send(*, now=None, batch_size: int = ESCALATIONS_PER_SWEEP) -> int:
    """Send every due escalation whose event nobody acknowledged or resolved; returns how
    many went out. Exactly once, whoever else sweeps at the same time: each is claimed
    (SKIP LOCKED, pending -> sent) in the transaction that writes its deliveries, which
    are enqueued once it commits."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(Escalation.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(status=Escalation.Status.PENDING, due_at__lte=now)
                   .select_related("event__event_type__category")
                   .only(*ESCALATION_FIELDS).order_by("due_at")[:batch_size])
        if not due:
            return 0
        stale = [e.pk for e in due if e.event.acknowledged_at or e.event.resolved_at]
        Escalation.objects.filter(pk__in=stale).update(status=Escalation.Status.CANCELLED,
                                                       finished_at=now)
        live = [e for e in due if e.pk not in stale]
        audiences = audiences_get([e.event for e in live])
        configs = {}
        rows = []
        for escalation in live:
            event = escalation.event
            for channel in escalation.channels:
                backend = get_backend(channel)
                if backend is None or not backend.external:
                    continue
                if channel not in configs:
                    configs[channel] = backend.load_config()
                for recipient in backend.targets(
                        event=event, members=audiences[event.pk],
                        rule=SimpleNamespace(extra_emails=escalation.emails),
                        config=configs[channel]):
                    rows.append(Delivery(
                        event=event, channel=channel, purpose=Delivery.Purpose.ESCALATION,
                        user_id=recipient.user_id, target=recipient.target,
                        target_data=recipient.target_data, priority=event.priority,
                        next_attempt_at=timezone.now()))
        written = Delivery.objects.bulk_create(rows, batch_size=1000)
        Escalation.objects.filter(pk__in=[e.pk for e in live]).update(
            status=Escalation.Status.SENT, finished_at=now)
        events_mark_escalated(event_ids=[e.event_id for e in live])
        _touch([e.event_id for e in live])
        deliveries_enqueue(written)
    if live:
        logger.info("escalated %d events (%d sends)", len(live), len(written))
    return len(live)


# --- resolve ------------------------------------------------------------------------------

def event_resolve_by_hand(*, event: Event, user) -> list:
    """Resolve ``event`` by hand: staff, or a person it was for (anyone else is told it does
    not exist). Returns the ids resolved now (empty: it was resolved already)."""
    allowed = user.is_staff or Notification.objects.filter(event=event, user=user).exists() \
        or Delivery.objects.filter(event=event, user=user).exists()
    if not allowed:
        raise NotFound("No such event.")
    with transaction.atomic():
        return events_resolved(event_ids=[event.pk], user=user)


def events_resolved(*, event_ids, user=None, by_event=None) -> list:
    """Resolve those of ``event_ids`` not resolved yet and do what a resolution does; inside
    the caller's transaction (the resolution deliveries are enqueued once it commits).
    Returns the ids resolved now."""
    resolved = events_resolve(event_ids=event_ids, user=user, by_event=by_event)
    if not resolved:
        return []
    escalations_cancel(event_ids=resolved)
    _touch(resolved)
    deliveries_enqueue(_resolution_deliveries(resolved))
    return resolved


def _resolution_deliveries(event_ids) -> list[Delivery]:
    """One resolution per target each resolved event was delivered to, where its channel
    tells of resolutions (``ChannelBackend.resolution_targets``: e.g. PagerDuty and Slack
    endpoints always, emails when the routing rule asks with ``notify_resolved``). A query
    for the deliveries, then at most one per channel."""
    sent = (Delivery.objects.filter(event_id__in=list(event_ids), kind=Delivery.Kind.EVENT,
                                    status=Delivery.Status.DELIVERED,
                                    purpose__in=[Delivery.Purpose.NOTIFY,
                                                 Delivery.Purpose.ESCALATION])
            .select_related("event__event_type").order_by("created_at"))
    asks, groups, seen = {}, defaultdict(list), set()
    for delivery in sent:
        if (delivery.event_id, delivery.channel, delivery.target) in seen:
            continue  # an escalation to a target the event reached already
        seen.add((delivery.event_id, delivery.channel, delivery.target))
        event_type = delivery.event.event_type
        if event_type.pk not in asks:
            rule = routing_get(event_type).rule
            asks[event_type.pk] = bool(rule and rule.notify_resolved)
        groups[delivery.channel, asks[event_type.pk]].append(delivery)
    now, rows = timezone.now(), []
    for (channel, asked), deliveries in groups.items():
        backend = get_backend(channel)
        if backend is None:
            continue
        told = {(r.target, r.user_id) for r in backend.resolution_targets(
            [delivery_recipient(d) for d in deliveries], asked=asked)}
        rows += [Delivery(event_id=d.event_id, channel=channel,
                          purpose=Delivery.Purpose.RESOLUTION, user_id=d.user_id,
                          target=d.target, target_data=d.target_data, priority=d.priority,
                          next_attempt_at=now)
                 for d in deliveries if (d.target, d.user_id) in told]
    return Delivery.objects.bulk_create(rows)


def _touch(event_ids) -> None:
    """Every recipient's bell shows the change (its version moves)."""
    Notification.objects.filter(event_id__in=list(event_ids)).update(updated_at=timezone.now())


# --- inhibit rules ------------------------------------------------------------------------

INHIBIT_KEYS = ("source_event_type", "target_event_types", "target_categories", "equal",
                "comment")


def inhibit_rule_save(*, values: dict, rule: InhibitRule | None = None,
                      created_by=None) -> InhibitRule:
    """Create an inhibit rule (or change ``rule``) from ``values``: ``source_event_type`` (a
    key), ``target_event_types`` (keys) and/or ``target_categories`` (slugs), at least one
    target in all; ``equal`` (payload keys); ``comment``. Every key and slug must exist.
    A change that would leave a rule without targets is a ``Conflict`` (with what it has).
    The one way inhibit rules are written (admin, REST, routing files)."""
    rule = rule or InhibitRule(created_by=created_by)
    unknown = sorted(set(values) - set(INHIBIT_KEYS))
    if unknown:
        raise ApplicationError(f"Unknown inhibit rule setting {unknown[0]!r}; use "
                               f"{', '.join(INHIBIT_KEYS)}.", field=unknown[0])
    if "source_event_type" in values:
        key = values["source_event_type"]
        source = EventType.objects.filter(key=key).first() if isinstance(key, str) else None
        if source is None:
            raise ApplicationError(f"unknown event type {str(key)[:120]!r}",
                                   field="source_event_type")
        rule.source_event_type = source
    for field in ("target_event_types", "target_categories", "equal", "comment"):
        if field in values:
            setattr(rule, field, values[field])
    if rule.source_event_type_id is None:
        raise ApplicationError("Name the source event type.", field="source_event_type")
    full_clean(rule)
    _check_known(EventType, "key", rule.target_event_types, "target_event_types",
                 "event type")
    _check_known(Category, "slug", rule.target_categories, "target_categories", "category")
    if not rule.target_event_types and not rule.target_categories:
        refusal = Conflict if rule.pk else ApplicationError  # a change that empties it
        raise refusal("Give at least one target: target_event_types or target_categories.",
                      field="target_event_types")
    rule.save()
    return rule


def inhibit_rule_delete(*, rule: InhibitRule) -> None:
    rule.delete()


def _check_known(model, field: str, values, name: str, noun: str) -> None:
    known = set(model.objects.filter(**{f"{field}__in": list(values)}).values_list(
        field, flat=True))
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ApplicationError(f"unknown {noun} {str(unknown[0])[:120]!r}", field=name)
