"""The control plane: every Celery task, the queue it runs on, its retries and its schedule.

One table, read by everything that needs it:

- settings derive ``CELERY_TASK_QUEUES`` and ``CELERY_TASK_ROUTES`` from it (``queues()``,
  ``routes()``);
- each task takes its name and retry policy from it (``task_options(name)``);
- ``manage.py sync_schedule`` (run by ``bin/serve``) writes the periodic ones to beat's
  database schedule (``config.schedule``);
- the README's "Scale out" and the Procfile's workers name the same queues.

Plain data, importing no application code, so settings can read it. Task names are kept
as they were: messages already queued and beat's rows refer to them.
"""

from dataclasses import dataclass, field

#: queue -> what runs there. Run one worker per lane (the Procfile), so none waits for another.
QUEUES = {
    "urgent": "routing of critical and high events, the outbox sweep that recovers them, "
              "and beat's heartbeat",
    "events": "routing of medium, low and info events, in batches",
    "deliveries": "immediate sends of critical and high events, and the delivery sweep",
    "digests": "flushes, digest sends, sends of batched priorities with digests off, "
               "housekeeping (retention, the Overview's rollups)",
    "webhooks": "webhook sends, so a slow receiver holds up no email",
    "bulk": "a large audience's immediate sends (its lanes), so a 1,000-member fan-out "
            "never holds up the next critical event's send",
}
DEFAULT_QUEUE = "events"

OUTBOX_SWEEP = "events.outbox_sweep"
EVENT_ROUTE = "notifications.event_route"
EVENT_ROUTE_URGENT = "notifications.event_route_urgent"
EVENTS_ROUTE_PENDING = "notifications.events_route_pending"
DIGEST_FLUSH = "notifications.digest_flush"
DELIVERY_SEND = "notifications.delivery_send"
DELIVERIES_SEND = "notifications.deliveries_send"
EVENT_DELIVERIES_SEND = "notifications.event_deliveries_send"
DELIVERIES_PUBLISH = "notifications.deliveries_publish"
DIGEST_SEND = "notifications.digest_send"
WEBHOOK_SEND = "notifications.webhook_send"
DELIVERY_SWEEP = "notifications.delivery_sweep"
RETENTION_PURGE = "notifications.retention_purge"
HELD_RELEASE = "notifications.held_release"
SNOOZED_WAKE = "notifications.snoozed_wake"
ESCALATION_SWEEP = "notifications.escalation_sweep"
BEAT_HEARTBEAT = "operations.beat_heartbeat"
OVERVIEW_ROLLUP = "operations.overview_rollup"


@dataclass(frozen=True)
class Schedule:
    """One entry of beat's schedule: a periodic run of a task with these kwargs."""

    name: str  # the entry's identity in beat's table (and its label in the admin)
    every_seconds: int
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    queue: str
    doc: str
    #: Runs again this many times after an unexpected failure, after ``retry_base_seconds``
    #: doubling each time (kept far below the broker's visibility timeout).
    retries: int = 0
    retry_base_seconds: float = 5
    schedules: tuple[Schedule, ...] = ()

    def retry_countdown(self, retries_done: int) -> float:
        return self.retry_base_seconds * 2 ** retries_done


MINUTE, HOUR = 60, 3600

TASKS = (
    TaskSpec(OUTBOX_SWEEP, "urgent", "enqueue routing again for events whose publish failed "
             "or whose message was lost",
             schedules=(Schedule("Sweep unrouted events (outbox)", 30),)),
    TaskSpec(EVENT_ROUTE_URGENT, "urgent", "route one critical or high event", retries=3),
    TaskSpec(EVENT_ROUTE, "events", "route one event (a batch's failed event, old messages)",
             retries=3),
    TaskSpec(EVENTS_ROUTE_PENDING, "events", "route every pending batched event, in batches",
             retries=3),
    TaskSpec(DIGEST_FLUSH, "digests", "claim a bucket's items into digests and send them",
             retries=3, schedules=(
                 Schedule("Flush 5 min digests (medium)", 5 * MINUTE, {"bucket": "5m"}),
                 Schedule("Flush 15 min digests (low)", 15 * MINUTE, {"bucket": "15m"}),
                 Schedule("Flush 1 hr digests (info)", HOUR, {"bucket": "1h"}),
             )),
    # One attempt of one send; a message names its queue (the channel's, see
    # ChannelBackend.queue): this queue is where a message without one goes.
    TaskSpec(DELIVERY_SEND, "deliveries", "one attempt of one send"),
    TaskSpec(DELIVERIES_SEND, "deliveries", "one attempt of each of a few sends, in a batch"),
    TaskSpec(EVENT_DELIVERIES_SEND, "bulk",
             "the next batch of a large audience's sends (then its continuation)"),
    TaskSpec(DELIVERIES_PUBLISH, "deliveries", "publish sends (messages of older versions)"),
    TaskSpec(DIGEST_SEND, "digests", "one attempt of a digest (messages of older versions)"),
    TaskSpec(WEBHOOK_SEND, "webhooks", "one attempt of a webhook send (older versions)"),
    TaskSpec(DELIVERY_SWEEP, "deliveries", "enqueue sends a lost message or a dead worker "
             "left behind", schedules=(Schedule("Sweep lost and interrupted deliveries", 30),)),
    TaskSpec(RETENTION_PURGE, "digests", "delete what is older than the retention window",
             schedules=(Schedule("Delete what is older than the retention window", HOUR),)),
    # Quiet hours end and snoozes wake within a minute: sweeps every 15 s.
    TaskSpec(HELD_RELEASE, "digests", "send what quiet hours held, one digest per target",
             schedules=(Schedule("Release what quiet hours held", 15),)),
    TaskSpec(SNOOZED_WAKE, "digests", "bring snoozed notifications back, unread",
             schedules=(Schedule("Wake snoozed notifications", 15),)),
    # An escalation is a row with a due time: this sweep sends it (exactly once, however
    # many run), so it survives worker restarts and goes out within 15 s of its time.
    TaskSpec(ESCALATION_SWEEP, "deliveries",
             "send again, on more channels, events nobody acknowledged in time",
             schedules=(Schedule("Escalate unacknowledged events", 15),)),
    # On the lane that is always served and quick: a fresh heartbeat says beat is sending
    # its schedule and it is being run (/readyz, manage.py status).
    TaskSpec(BEAT_HEARTBEAT, "urgent", "record that beat is alive",
             schedules=(Schedule("Beat heartbeat", 15),)),
    TaskSpec(OVERVIEW_ROLLUP, "digests", "count the last hours for the admin's Overview",
             schedules=(Schedule("Roll up the Overview's figures", 5 * MINUTE),)),
)

_BY_NAME = {task.name: task for task in TASKS}


def spec(name: str) -> TaskSpec:
    return _BY_NAME[name]


def task_options(name: str) -> dict:
    """``@shared_task(**task_options(NAME))``: its name, and how its messages are handled.

    Every task is idempotent, so a message whose worker died is run again: acks_late with
    reject_on_worker_lost puts it back on the queue instead of acknowledging it.
    """
    task = spec(name)
    return {"name": task.name, "max_retries": task.retries, "acks_late": True,
            "reject_on_worker_lost": True}


def routes() -> dict[str, dict]:
    """``CELERY_TASK_ROUTES``: each task to its queue."""
    return {task.name: {"queue": task.queue} for task in TASKS}


def schedules() -> list[tuple[TaskSpec, Schedule]]:
    """Every periodic run, with its task."""
    return [(task, schedule) for task in TASKS for schedule in task.schedules]
