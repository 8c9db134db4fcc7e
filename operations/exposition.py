"""The /metrics page: every process's counters summed, and the backlog read at scrape time.

The counters and histograms of ``core.metrics`` come from prometheus-client's multiprocess
files (every gunicorn worker, Celery pool process, beat and command of this host). The
gauges of what waits are read from the database and the broker when scraped, so they are
right whichever process serves the scrape; a source that does not answer is left out, and
``datafi_metrics_source_up{source}`` says so.
"""

import logging

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from . import backlog
from .brokers import queue_depths
from .health import heartbeat_age

logger = logging.getLogger(__name__)


class BacklogCollector:
    """Gauges read at scrape time: outbox, queues, digest items, webhook endpoints, beat."""

    def collect(self):
        up = GaugeMetricFamily("datafi_metrics_source_up",
                               "Whether the source of the gauges below answered the scrape.",
                               labels=["source"])
        try:
            families = list(self._database())
            up.add_metric(["database"], 1)
        except Exception as exc:  # the scrape goes on without these gauges
            logger.warning("metrics: the database does not answer: %r", exc)
            families = []
            up.add_metric(["database"], 0)
        try:
            families.append(self._queues())
            up.add_metric(["broker"], 1)
        except Exception as exc:
            logger.warning("metrics: the broker does not answer: %r", exc)
            up.add_metric(["broker"], 0)
        yield from families
        yield up

    def _database(self):
        outbox = GaugeMetricFamily("datafi_outbox_pending",
                                   "Events waiting to be routed, by priority.",
                                   labels=["priority"])
        for priority, count in backlog.outbox_pending().items():
            outbox.add_metric([priority], count)
        yield outbox
        digests = GaugeMetricFamily("datafi_digest_pending_items",
                                    "Items waiting for their digest flush, by bucket and "
                                    "channel.", labels=["bucket", "channel"])
        for bucket, channels in backlog.digest_pending().items():
            for channel, count in channels.items():
                digests.add_metric([bucket, channel], count)
        yield digests
        endpoints = GaugeMetricFamily("datafi_webhook_endpoints",
                                      "Webhook endpoints by state: healthy, failing (their "
                                      "last deliveries failed), inactive.", labels=["state"])
        for state, count in backlog.webhook_endpoint_states().items():
            endpoints.add_metric([state], count)
        yield endpoints
        age = heartbeat_age()
        if age is not None:
            yield GaugeMetricFamily("datafi_beat_heartbeat_age_seconds",
                                    "Seconds since beat's heartbeat task last ran.", value=age)

    def _queues(self):
        queues = GaugeMetricFamily("datafi_queue_depth",
                                   "Messages waiting in each queue, read from the broker.",
                                   labels=["queue"])
        for queue, depth in queue_depths().items():
            queues.add_metric([queue], depth)
        return queues


def metrics_text() -> bytes:
    """The exposition: every process's metrics summed, then the backlog gauges."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(BacklogCollector())
    return generate_latest(registry)
