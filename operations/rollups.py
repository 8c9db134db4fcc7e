"""The Overview's figures, rolled up by hour into ``HourlyRollup``.

Rollups rather than aggregates at page time: the charts span 7 days, and counting that
much of the log (10M notifications and their deliveries) on each view would take seconds
however it is indexed. A rollup run counts only the hours that are still settling
(``DATAFI_OVERVIEW_SETTLE_HOURS``, 3) every 5 minutes, through indexes that exist anyway:
events by ``created_at``, their deliveries and notifications by their event (foreign key
indexes), digests by ``created_at``; so its cost follows the traffic of a few hours, not
the size of the tables, and the page reads at most a few thousand small rows.

What an hour holds:

- events emitted in it, by priority;
- their deliveries sent alone (immediate, or batched with digests off), by channel and
  outcome (in-app: the notifications written), and the digests claimed in it, by channel
  and outcome; an event or a digest is counted in the hour it was emitted or claimed,
  with the state it has when the hour is last computed;
- emit-to-delivered latency of those deliveries sent alone, as histogram counts per
  channel (``LATENCY_BOUNDS``), from which the page reads p50 and p99;
- the most events pending routing, digest items waiting and failing or inactive webhook
  endpoints seen by the runs of that hour.

Hours after the last computed one are filled in on the next run (at most 7 days back), so
a beat that was down leaves no gap in the counts. Rows older than 8 days are deleted.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Value,
    When,
)
from django.db.models.functions import TruncHour
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from core.metrics import LATENCY_BUCKETS
from events.catalog import Priority
from events.models import Event
from notifications.in_app import IN_APP
from notifications.models import Delivery, Digest, Notification

from . import backlog
from .models import HourlyRollup

Kind = HourlyRollup.Kind
#: Upper bounds (seconds) of the latency histograms; one more count for "above the last".
LATENCY_BOUNDS = LATENCY_BUCKETS
SPAN = timedelta(days=7)
KEEP = timedelta(days=8)
HOUR = timedelta(hours=1)

#: A delivery's or digest's status as the charts count it (skipped deliveries were never
#: meant to be sent and are left out).
OUTCOMES = {
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.FAILED: "failed",
    Delivery.Status.PENDING: "waiting",
    Delivery.Status.SENDING: "waiting",
    Delivery.Status.HELD: "waiting",
    Delivery.Status.CANCELLED: "cancelled",
    Delivery.Status.EXPIRED: "cancelled",
    Digest.Status.CLAIMED: "waiting",
}
OUTCOME_ORDER = ("delivered", "failed", "waiting", "cancelled")


@dataclass
class RollupResult:
    first_hour: datetime
    last_hour: datetime
    rows: int


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def overview_rollup(*, now: datetime | None = None) -> RollupResult:
    """Compute again the hours that are settling (and any not computed yet), and record the
    backlog now in the current hour. Idempotent; safe to overlap (the last one wins)."""
    now = now or timezone.now()
    current = hour_of(now)
    first = current - timedelta(hours=settings.DATAFI_OVERVIEW_SETTLE_HOURS)
    newest = (HourlyRollup.objects.filter(kind=Kind.EVENTS)
              .aggregate(newest=Max("hour"))["newest"])
    first = max(min(first, newest + HOUR if newest else current - SPAN), current - SPAN)
    end = current + HOUR
    rows = _counted_rows(first, end)
    with transaction.atomic():
        HourlyRollup.objects.filter(kind__in=[Kind.EVENTS, Kind.DELIVERIES, Kind.LATENCY],
                                    hour__gte=first, hour__lt=end).delete()
        HourlyRollup.objects.bulk_create(rows, batch_size=1000)
        _record_backlog(current)
        HourlyRollup.objects.filter(hour__lt=current - KEEP).delete()
    return RollupResult(first_hour=first, last_hour=current, rows=len(rows))


def _counted_rows(first: datetime, end: datetime) -> list[HourlyRollup]:
    rows = []
    hours = []
    hour = first
    while hour < end:
        hours.append(hour)
        hour += HOUR
    # Every priority of every hour, zeros too: the newest events row marks what is computed.
    events = defaultdict(int)
    for row in (Event.objects.filter(created_at__gte=first, created_at__lt=end)
                .annotate(h=TruncHour("created_at")).values("h", "priority")
                .annotate(n=Count("pk")).order_by()):
        events[(row["h"], row["priority"])] += row["n"]
    rows += [HourlyRollup(hour=h, kind=Kind.EVENTS, key=p, value=events[(h, p)])
             for h in hours for p in Priority.VALUES]

    deliveries = defaultdict(int)
    latency = defaultdict(lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    in_event_hours = {"event__created_at__gte": first, "event__created_at__lt": end}
    sent_alone = (Delivery.objects.filter(kind=Delivery.Kind.EVENT, bucket="", **in_event_hours)
                  .exclude(status=Delivery.Status.SKIPPED)
                  .annotate(h=TruncHour("event__created_at")))
    for row in sent_alone.values("h", "channel", "status").annotate(n=Count("pk")).order_by():
        deliveries[(row["h"], row["channel"], OUTCOMES[row["status"]])] += row["n"]
    for row in (Digest.objects.filter(created_at__gte=first, created_at__lt=end)
                .annotate(h=TruncHour("created_at")).values("h", "channel", "status")
                .annotate(n=Count("pk")).order_by()):
        deliveries[(row["h"], row["channel"], OUTCOMES[row["status"]])] += row["n"]
    in_app = (Notification.objects.filter(kind=Notification.Kind.EVENT, **in_event_hours)
              .annotate(h=TruncHour("event__created_at")))
    for row in (in_app.annotate(b=_latency_bucket("created_at")).values("h", "b")
                .annotate(n=Count("pk")).order_by()):
        deliveries[(row["h"], IN_APP.name, "delivered")] += row["n"]
        latency[(row["h"], IN_APP.name)][row["b"]] += row["n"]
    for row in (sent_alone.filter(status=Delivery.Status.DELIVERED)
                .annotate(b=_latency_bucket("delivered_at")).values("h", "channel", "b")
                .annotate(n=Count("pk")).order_by()):
        latency[(row["h"], row["channel"])][row["b"]] += row["n"]
    rows += [HourlyRollup(hour=h, kind=Kind.DELIVERIES, key=channel, outcome=outcome, value=n)
             for (h, channel, outcome), n in deliveries.items()]
    rows += [HourlyRollup(hour=h, kind=Kind.LATENCY, key=channel, value=sum(counts),
                          histogram=counts)
             for (h, channel), counts in latency.items()]
    return rows


def _latency_bucket(delivered_field: str):
    """The index in ``LATENCY_BOUNDS`` of emit (the event's ``created_at``) to
    ``delivered_field``, computed in the database (``len(LATENCY_BOUNDS)``: above all)."""
    latency = ExpressionWrapper(F(delivered_field) - F("event__created_at"),
                                output_field=DurationField())
    return Case(*[When(condition, then=Value(index)) for index, condition in enumerate(
        _at_most(latency, bound) for bound in LATENCY_BOUNDS)],
        default=Value(len(LATENCY_BOUNDS)), output_field=IntegerField())


def _at_most(latency, bound: float):
    return LessThanOrEqual(latency, Value(timedelta(seconds=bound),
                                          output_field=DurationField()))


def _record_backlog(current: datetime) -> None:
    """Keep, for the current hour, the most of each backlog seen by its runs."""
    now_values = {(Kind.OUTBOX, priority): n
                  for priority, n in backlog.outbox_pending().items()}
    for bucket, channels in backlog.digest_pending().items():
        now_values[(Kind.DIGEST_ITEMS, bucket)] = sum(channels.values())
    states = backlog.webhook_endpoint_states()
    for state in ("failing", "inactive"):
        now_values[(Kind.WEBHOOKS, state)] = states[state]
    kinds = {kind for kind, _ in now_values}
    existing = {(row.kind, row.key): row for row in HourlyRollup.objects.select_for_update()
                .filter(hour=current, kind__in=kinds)}
    for (kind, key), value in now_values.items():
        row = existing.get((kind, key))
        if row is None:
            HourlyRollup.objects.create(hour=current, kind=kind, key=key, value=value)
        elif value > row.value:
            row.value = value
            row.save(update_fields=["value"])


def quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram (``LATENCY_BOUNDS`` counts plus the
    count above them), interpolated within its bucket as Prometheus' histogram_quantile
    does; None for no observation. Above the last bound reads as the last bound."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(LATENCY_BOUNDS):
                return float(LATENCY_BOUNDS[-1])
            lower = LATENCY_BOUNDS[index - 1] if index else 0.0
            upper = LATENCY_BOUNDS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS[-1])
