"""The Overview page's figures: the hourly rollups of a range as charts, and the backlog now.

One query reads the range's rollups (at most 7 x 24 hours of a few dozen rows each), three
small ones the backlog now: the page costs the same on 10 thousand notifications or 10
million (``tests/operations/test_overview.py`` counts its queries).
"""

from collections import defaultdict
from datetime import timedelta

from django.utils import timezone

from channels_app.backends import registered_backends
from events.catalog import Priority
from notifications.models import Bucket

from . import backlog
from .charts import Series, bar_chart, line_chart
from .health import heartbeat_age
from .models import HourlyRollup
from .rollups import OUTCOME_ORDER, hour_of, quantile

Kind = HourlyRollup.Kind
RANGES = {"24h": ("Last 24 hours", 24), "7d": ("Last 7 days", 7 * 24)}


def overview_page(*, range_name: str) -> dict:
    """The template's context: the range links, the backlog now, the chart sections."""
    label, span = RANGES[range_name]
    last = hour_of(timezone.now())
    hours = [last - timedelta(hours=span - 1 - i) for i in range(span)]
    index = {hour: i for i, hour in enumerate(hours)}
    figures = defaultdict(lambda: [None] * span)  # (kind, key, outcome) -> value per hour
    latency = defaultdict(lambda: [None] * span)  # channel -> histogram per hour
    for hour, kind, key, outcome, value, histogram in HourlyRollup.objects.filter(
            hour__gte=hours[0]).values_list("hour", "kind", "key", "outcome", "value",
                                            "histogram"):
        i = index.get(hour)
        if i is None:
            continue
        figures[(kind, key, outcome)][i] = value
        if kind == Kind.LATENCY and histogram:
            latency[key][i] = histogram
    channels = [(b.name, b.label) for b in registered_backends()]
    channels += sorted({(key, key) for kind, key, _ in figures
                        if kind == Kind.DELIVERIES and key not in dict(channels)})

    def priority_series(kind):
        return [Series(label, figures[(kind, p, "")], "priority", priority=p)
                for p, label in Priority.CHOICES]

    sections = [
        ("Events", [bar_chart(chart_id="events", title="Events emitted per hour, by priority",
                              hours=hours, series=priority_series(Kind.EVENTS),
                              unit="events")]),
        ("Deliveries", [bar_chart(
            chart_id=f"deliveries-{name}", title=f"{label}: deliveries per hour, by outcome",
            hours=hours, unit="deliveries",
            series=[Series(outcome, figures[(Kind.DELIVERIES, name, outcome)],
                           f"outcome-{outcome}") for outcome in OUTCOME_ORDER])
            for name, label in channels]),
        ("Emit to delivered", [line_chart(
            chart_id=f"latency-{name}", seconds=True, hours=hours,
            title=f"{label}: emit to delivered, p50 and p99 per hour",
            series=[Series(f"p{round(q * 100)}", [_quantile(h, q) for h in latency[name]],
                           f"quantile-{round(q * 100)}") for q in (0.5, 0.99)])
            for name, label in channels]),
        ("Backlog", [
            line_chart(chart_id="digest-items", hours=hours,
                       title="Digest items waiting for their flush, most per hour",
                       series=[Series(bucket.label, figures[(Kind.DIGEST_ITEMS, bucket.value,
                                                              "")], f"bucket-{bucket.value}")
                               for bucket in Bucket]),
            bar_chart(chart_id="outbox", title="Events waiting to be routed, most per hour",
                      hours=hours, series=priority_series(Kind.OUTBOX), unit="events"),
            line_chart(chart_id="webhooks", hours=hours,
                       title="Webhook endpoints failing or switched off, most per hour",
                       series=[Series(state, figures[(Kind.WEBHOOKS, state, "")],
                                      f"endpoints-{state}") for state in ("failing", "inactive")]),
        ]),
    ]
    return {
        "range_name": range_name, "range_label": label,
        "ranges": [(name, text) for name, (text, _) in RANGES.items()],
        "now": _now(),
        "sections": [{"title": title, "charts": charts} for title, charts in sections],
    }


def _quantile(histogram, q):
    return None if histogram is None else quantile(histogram, q)


def _now() -> list[tuple[str, str]]:
    """The backlog as it is now, in words."""
    outbox = backlog.outbox_pending()
    digests = backlog.digest_pending()
    endpoints = backlog.webhook_endpoint_states()
    age = heartbeat_age()
    return [
        ("Events waiting to be routed",
         f"{sum(outbox.values()):,}" + _parts(outbox)),
        ("Digest items waiting",
         f"{sum(sum(c.values()) for c in digests.values()):,}"
         + _parts({bucket: sum(c.values()) for bucket, c in digests.items()})),
        ("Webhook endpoints", ", ".join(f"{n} {state}" for state, n in endpoints.items())),
        ("Beat's last heartbeat", "never" if age is None else f"{age:,.0f} s ago"),
    ]


def _parts(counts: dict) -> str:
    shown = [f"{key} {n:,}" for key, n in counts.items() if n]
    return f" ({', '.join(shown)})" if shown else ""
