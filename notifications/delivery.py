"""The delivery pipeline: every send to an external channel (email, webhooks).

Rows first, network later. Routing and digest flushes only write pending deliveries and,
once their transaction has committed, enqueue one task per delivery (``delivery_send`` for
an immediate one on the ``deliveries`` queue, ``digest_send`` for a digest on ``digests``,
``webhook_send`` for any webhook delivery on ``webhooks``).

One attempt of a send:

1. claim: a conditional UPDATE pending -> sending (attempts + 1), plus an attempt row,
   committed before anything leaves the process; a row that is not pending, not due or
   already delivered is left alone, so duplicate tasks do nothing;
2. render and send the message with no transaction open (a slow SMTP server or webhook
   never holds a database lock or connection in a transaction);
3. record the outcome on the attempt and the delivery: delivered; a transient error goes
   back to pending with ``next_attempt_at`` (exponential backoff, bounded jitter) and a
   task enqueued with that countdown; a permanent error, or the last attempt, fails.

``delivery_sweep`` (beat, every 30 s) finds what a lost message or a dead worker left
behind: pending deliveries overdue by a grace period, deliveries whose channel has just
been switched on, and ``sending`` rows older than ``DATAFI_SENDING_TIMEOUT_SECONDS``.
Receivers can drop duplicates: every attempt carries the same delivery id (the email
Message-ID is derived from it).
"""

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from channels_app.backends import ChannelBackend, Recipient, get_backend, registered_backends
from channels_app.errors import DeliveryError
from channels_app.models import Channel
from events import task_names
from events.catalog import Priority
from events.models import Event

from .channels.in_app import event_title
from .models import PRIORITY_BY_BUCKET, Delivery, DeliveryAttempt, Digest
from .selectors import AudienceCheck

logger = logging.getLogger(__name__)

#: The rows the pipeline sends by themselves: immediate deliveries and digests (an event
#: waiting in a bucket is sent inside its digest).
SENT_ALONE = Q(kind=Delivery.Kind.DIGEST) | Q(bucket="")
#: A task may arrive this early for its due time (clocks of web and worker processes).
DUE_TOLERANCE = timedelta(seconds=1)
ERROR_KEEP_CHARS = 2000


class DeliveryNotRetryable(Exception):
    """A hand retry of a delivery that is not failed (or is not sent by itself)."""


# --- enqueueing ---------------------------------------------------------------------------

def deliveries_enqueue(deliveries, *, countdown: float | None = None) -> None:
    """Enqueue one send task per delivery once the current transaction commits.

    Must be called inside the transaction that wrote (or re-armed) the rows; outside one
    the tasks are enqueued at once. A failed publish is logged: the sweep sends the row.
    Reads each delivery's kind, channel and priority (load them when using ``only()``).

    More than ``DATAFI_SEND_FANOUT_CHUNK`` sends (a critical event for a large audience, a
    flush with many email digests) are handed to the send workers as ``deliveries_publish``
    tasks of that many sends each, which publish them: the routing worker publishes a
    handful of messages and is free for the next critical event at once, instead of
    publishing one message per recipient first.
    """
    jobs = [(d.kind, str(d.pk), d.channel, d.priority) for d in deliveries]
    if jobs:
        transaction.on_commit(partial(_publish, jobs, countdown))


def deliveries_publish(*, jobs) -> None:
    """Publish the send tasks of ``jobs`` (as ``deliveries_enqueue`` makes them), now."""
    _publish([tuple(job) for job in jobs], None, fan_out=False)


#: Where an immediate send of a batched priority goes (its channel has digests switched
#: off): the batched lane's send queue, with the digests, so the ``deliveries`` queue only
#: ever holds critical and high sends and they never wait behind a medium backlog.
BATCHED_SENDS_QUEUE = "digests"
_IMMEDIATE_SENDS_QUEUE = "deliveries"


def send_task_for(kind: str, pk: str, channel: str, priority: str) -> tuple[str, dict, dict]:
    """The task, its kwargs and its publish options for one delivery."""
    if channel == Channel.WEBHOOK:  # its own queue: a slow receiver holds up no email
        return task_names.WEBHOOK_SEND, {"delivery_id": pk}, {}
    if kind == Delivery.Kind.DIGEST:
        return task_names.DIGEST_SEND, {"digest_id": pk}, {}
    if priority in Priority.IMMEDIATE:
        return task_names.DELIVERY_SEND, {"delivery_id": pk}, {}
    return task_names.DELIVERY_SEND, {"delivery_id": pk}, {"queue": BATCHED_SENDS_QUEUE}


def _publish(jobs: list[tuple[str, str, str, str]], countdown: float | None, *,
             fan_out: bool = True) -> None:
    """Publish the jobs with one producer; stop at the first failure, since the broker is
    then down and each further try would wait for its timeout: the rows are pending and
    due, so the delivery sweep enqueues them once it is back."""
    chunk = settings.DATAFI_SEND_FANOUT_CHUNK
    if fan_out and countdown is None and len(jobs) > chunk:
        messages = [_fan_out_message(jobs[start:start + chunk])
                    for start in range(0, len(jobs), chunk)]
    else:
        messages = [send_task_for(*job) for job in jobs]
    published = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for name, kwargs, options in messages:
                current_app.send_task(name, kwargs=kwargs, countdown=countdown, retry=False,
                                      producer=producer, **options)
                published += 1
    except Exception as exc:  # the broker's failure must not become the caller's
        logger.warning("%d of %d messages for %d deliveries not enqueued, the sweep will "
                       "retry: %r", len(messages) - published, len(messages), len(jobs), exc)


def _fan_out_message(jobs) -> tuple[str, dict, dict]:
    """One ``deliveries_publish`` task for ``jobs``, on the lane of their highest priority."""
    urgent = any(priority in Priority.IMMEDIATE for *_, priority in jobs)
    queue = _IMMEDIATE_SENDS_QUEUE if urgent else BATCHED_SENDS_QUEUE
    return task_names.DELIVERIES_PUBLISH, {"jobs": [list(job) for job in jobs]}, {"queue": queue}


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after failed attempt number ``attempt`` (1-based).

    ``DATAFI_RETRY_BASE_SECONDS`` x 2^(attempt-1), within +-20% jitter so retries of many
    deliveries spread out yet still grow, capped at ``DATAFI_RETRY_MAX_SECONDS``.
    """
    delay = settings.DATAFI_RETRY_BASE_SECONDS * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
    return min(delay, settings.DATAFI_RETRY_MAX_SECONDS)


# --- one attempt ----------------------------------------------------------------------------

class Outcome:
    """What ``delivery_send`` did, for the task's log and the tests."""

    SKIPPED = "skipped"  # vanished, not pending, not due, or not sent by itself
    WAITING = "waiting"  # the channel is switched off: the delivery waits as pending
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a digest whose every recipient item left the audience


@dataclass
class _Attempt:
    delivery: Delivery
    record: DeliveryAttempt


def delivery_send(*, delivery_id) -> str:
    """Make one attempt at sending one delivery (or digest delivery); idempotent.

    Must not be called inside a transaction: the claim commits before the network call.
    Returns an ``Outcome`` value.
    """
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        logger.info("delivery %s: not found, nothing to send", delivery_id)
        return Outcome.SKIPPED
    backend = get_backend(delivery.channel)
    if backend is None or not backend.external or not delivery.is_sent_alone:
        return Outcome.SKIPPED
    if delivery.status != Delivery.Status.PENDING:
        return Outcome.SKIPPED
    if not backend.is_enabled():
        # Waits with no due time: switching the channel on enqueues it (and the sweep).
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).update(
            next_attempt_at=None)
        return Outcome.WAITING
    attempt = _claim(delivery)
    if attempt is None:
        return Outcome.SKIPPED

    started = time.monotonic()
    status_code, response = None, ""
    try:
        message = _render(attempt.delivery, backend)
        if message is None:
            return _record_cancelled(attempt)
        result = backend.send(message)
        status_code, response = result.status_code, result.response
    except DeliveryError as error:
        outcome = (DeliveryAttempt.Outcome.TRANSIENT if error.transient
                   else DeliveryAttempt.Outcome.PERMANENT)
        return _record(attempt, backend, outcome=outcome, status_code=error.code,
                       error=error.detail, duration=time.monotonic() - started,
                       retry_after=error.retry_after)
    except ValueError as exc:  # the message cannot be built (e.g. not a valid address)
        return _record(attempt, backend, outcome=DeliveryAttempt.Outcome.PERMANENT,
                       status_code=None, error=f"The message cannot be built: {exc}",
                       duration=time.monotonic() - started)
    return _record(attempt, backend, outcome=DeliveryAttempt.Outcome.DELIVERED,
                   status_code=status_code, response=response,
                   duration=time.monotonic() - started)


def _claim(delivery: Delivery) -> _Attempt | None:
    """pending -> sending with the next attempt number, committed; None if not claimable."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Delivery.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + DUE_TOLERANCE),
            pk=delivery.pk, status=Delivery.Status.PENDING,
        ).update(status=Delivery.Status.SENDING, attempts=F("attempts") + 1,
                 sending_started_at=now, next_attempt_at=None, updated_at=now)
        if not claimed:
            return None
        delivery.refresh_from_db()
        record = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts,
                                                started_at=now)
    return _Attempt(delivery=delivery, record=record)


def _recipient(delivery: Delivery) -> Recipient:
    return Recipient(user_id=delivery.user_id, address=delivery.address,
                     endpoint_id=delivery.endpoint_id)


def _render(delivery: Delivery, backend: ChannelBackend):
    """The message of ``delivery``, or None for a digest left with nothing to send."""
    recipient = _recipient(delivery)
    if delivery.kind == Delivery.Kind.EVENT:
        event = Event.objects.select_related("event_type__category", "workspace").get(
            pk=delivery.event_id)
        return backend.render_event(event=event, title=event_title(event), recipient=recipient,
                                    delivery_id=delivery.pk)
    items = list(
        Delivery.objects.filter(digest_id=delivery.digest_id, kind=Delivery.Kind.EVENT)
        .exclude(status=Delivery.Status.CANCELLED)
        .select_related("event__event_type__category", "event__workspace")
        .order_by("event__occurred_at", "pk")
    )
    # Checked again at send time, as in the bell: a member who left is not told.
    audience = AudienceCheck(user_ids={item.user_id for item in items if item.user_id})
    gone = [item.pk for item in items
            if item.user_id and not audience.allows(item.event, item.user_id)]
    if gone:
        Delivery.objects.filter(pk__in=gone).update(
            status=Delivery.Status.CANCELLED, updated_at=timezone.now(),
            last_error="The recipient is no longer in the event's audience.")
    events = [(item.event, event_title(item.event)) for item in items if item.pk not in gone]
    if not events:
        return None
    return backend.render_digest(priority=PRIORITY_BY_BUCKET[delivery.bucket], events=events,
                                 recipient=recipient, delivery_id=delivery.pk)


def _record(attempt: _Attempt, backend: ChannelBackend, *, outcome: str,
            status_code: int | None, duration: float, error: str = "", response: str = "",
            retry_after: float | None = None) -> str:
    """Write the attempt's outcome and the delivery's next state, in one transaction."""
    now = timezone.now()
    delivery, number = attempt.delivery, attempt.record.number
    error = error[:ERROR_KEEP_CHARS]
    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=attempt.record.pk).update(
            outcome=outcome, status_code=status_code, error=error, response=response,
            duration_ms=max(0, round(duration * 1000)))
        current = Delivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if current is None:
            return Outcome.SKIPPED
        if outcome == DeliveryAttempt.Outcome.DELIVERED:
            # Whatever the sweep thought meanwhile, the message is out: delivered wins.
            _finish(current, Delivery.Status.DELIVERED, now=now, status_code=status_code)
            backend.delivery_finished(recipient=_recipient(current), delivered=True,
                                      status_code=status_code, error="")
            return Outcome.DELIVERED
        if current.status != Delivery.Status.SENDING or current.attempts != number:
            return Outcome.SKIPPED  # the sweep gave the row to a newer attempt
        current.last_error, current.last_status_code = error, status_code
        if (outcome == DeliveryAttempt.Outcome.TRANSIENT
                and number < backend.max_attempts_for(_recipient(current))):
            delay = retry_delay(number)
            if retry_after:  # the receiver asked for a later retry: honour it, within the cap
                delay = min(max(delay, retry_after), settings.DATAFI_RETRY_MAX_SECONDS)
            current.status = Delivery.Status.PENDING
            current.next_attempt_at = now + timedelta(seconds=delay)
            current.sending_started_at = None
            current.save(update_fields=["status", "next_attempt_at", "sending_started_at",
                                        "last_error", "last_status_code", "updated_at"])
            deliveries_enqueue([current], countdown=delay)
            logger.info("delivery %s: attempt %d failed (%s), retry in %.1f s",
                        delivery.pk, number, error, delay)
            return Outcome.RETRYING
        _finish(current, Delivery.Status.FAILED, now=now, status_code=status_code, error=error)
        backend.delivery_finished(recipient=_recipient(current), delivered=False,
                                  status_code=status_code, error=error)
        logger.warning("delivery %s failed after %d attempt(s): %s", delivery.pk, number, error)
        return Outcome.FAILED


def _record_cancelled(attempt: _Attempt) -> str:
    now = timezone.now()
    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=attempt.record.pk).delete()
        Delivery.objects.filter(pk=attempt.delivery.pk).update(
            status=Delivery.Status.CANCELLED, attempts=F("attempts") - 1,
            sending_started_at=None, updated_at=now,
            last_error="Every recipient of this digest left the events' audience.")
        Digest.objects.filter(pk=attempt.delivery.digest_id).update(
            status=Digest.Status.CANCELLED, sent_at=now)
    return Outcome.CANCELLED


def _finish(delivery: Delivery, status: str, *, now, status_code: int | None,
            error: str = "") -> None:
    """Mark ``delivery`` delivered or failed; a digest's items and digest row follow it.

    Must be called inside a transaction holding the delivery's row lock.
    """
    delivery.status = status
    delivery.last_status_code = status_code
    delivery.last_error = error
    delivery.next_attempt_at = None
    delivery.sending_started_at = None
    fields = ["status", "last_status_code", "last_error", "next_attempt_at",
              "sending_started_at", "updated_at"]
    if status == Delivery.Status.DELIVERED:
        delivery.delivered_at = now
        fields.append("delivered_at")
    delivery.save(update_fields=fields)
    if delivery.kind == Delivery.Kind.DIGEST:
        items = Delivery.objects.filter(digest_id=delivery.digest_id, kind=Delivery.Kind.EVENT,
                                        status__in=[Delivery.Status.SENDING,
                                                    Delivery.Status.FAILED])
        if status == Delivery.Status.DELIVERED:
            items.update(status=status, delivered_at=now, updated_at=now, last_error="")
            Digest.objects.filter(pk=delivery.digest_id).update(
                status=Digest.Status.DELIVERED, sent_at=now, attempts=delivery.attempts,
                last_error="")
        else:
            items.update(status=status, updated_at=now, last_error=error)
            Digest.objects.filter(pk=delivery.digest_id).update(
                status=Digest.Status.FAILED, attempts=delivery.attempts, last_error=error)


# --- by hand, and when a channel is switched on -------------------------------------------

def delivery_retry(*, delivery_id) -> Delivery:
    """Send a failed delivery again under the same id; its attempt numbers continue.

    A hand retry is one more attempt (then transient errors are retried as usual while
    attempts remain; past the channel's limit the next failure is final). Raises
    ``DeliveryNotRetryable`` saying why for a delivery that is not failed, or that is an
    event inside a digest (retry the digest instead). Enqueues after commit.
    """
    with transaction.atomic():
        delivery = _lock_sent_alone(delivery_id, action="retry")
        if delivery.status != Delivery.Status.FAILED:
            raise DeliveryNotRetryable(
                f"Only a failed delivery can be retried; this one is {delivery.status}.")
        now = timezone.now()
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = now
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
        if delivery.kind == Delivery.Kind.DIGEST:
            Delivery.objects.filter(digest_id=delivery.digest_id, kind=Delivery.Kind.EVENT,
                                    status=Delivery.Status.FAILED).update(
                status=Delivery.Status.SENDING, updated_at=now)
            Digest.objects.filter(pk=delivery.digest_id).update(status=Digest.Status.CLAIMED)
        deliveries_enqueue([delivery])
    return delivery


def _lock_sent_alone(delivery_id, *, action: str) -> Delivery:
    """Lock a delivery that is sent by itself, for a hand ``action`` (retry, replay);
    an event inside a digest raises ``DeliveryNotRetryable`` naming the digest."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
    if not delivery.is_sent_alone:
        raise DeliveryNotRetryable(
            f"This delivery went out in digest {delivery.digest_id}: {action} the digest's "
            "delivery instead.")
    return delivery


def delivery_replay(*, delivery_id) -> Delivery:
    """Send a delivered or failed delivery again under the same id (a receiver that lost it,
    or wants it again); its attempt numbers continue.

    Raises ``DeliveryNotRetryable`` for a delivery that is still on its way (pending or
    sending), that was never sent (cancelled, expired), or that is an event inside a digest
    (replay the digest instead). Enqueues after commit.
    """
    with transaction.atomic():
        delivery = _lock_sent_alone(delivery_id, action="replay")
        if delivery.status not in (Delivery.Status.DELIVERED, Delivery.Status.FAILED):
            raise DeliveryNotRetryable(
                f"Only a delivered or failed delivery can be replayed; this one is "
                f"{delivery.status}.")
        if delivery.status == Delivery.Status.FAILED:
            return delivery_retry(delivery_id=delivery_id)
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
        deliveries_enqueue([delivery])
    return delivery


def channel_deliveries_enqueue(*, channel: str) -> int:
    """Enqueue every pending delivery of ``channel`` now (it was just switched on)."""
    with transaction.atomic():
        waiting = list(Delivery.objects.select_for_update(skip_locked=True)
                       .filter(SENT_ALONE, channel=channel, status=Delivery.Status.PENDING)
                       .filter(Q(next_attempt_at__isnull=True)
                               | Q(next_attempt_at__lte=timezone.now()))
                       .only("pk", "kind", "channel", "priority"))
        Delivery.objects.filter(pk__in=[d.pk for d in waiting]).update(
            next_attempt_at=timezone.now())
        deliveries_enqueue(waiting)
    return len(waiting)


# --- the sweep ----------------------------------------------------------------------------

@dataclass
class SweepResult:
    overdue: int = 0  # pending sends enqueued again (lost message, or channel switched on)
    interrupted: int = 0  # sends whose worker died, enqueued again or failed


def delivery_sweep(*, batch_size: int = 500) -> SweepResult:
    """Enqueue again what a lost task message or a dead worker left behind; idempotent.

    - ``sending`` for longer than ``DATAFI_SENDING_TIMEOUT_SECONDS``: the worker died
      mid-send. Its attempt is recorded as a transient error, and the delivery is pending
      again (or failed if that was its last attempt).
    - pending and due more than ``DATAFI_DELIVERY_GRACE_SECONDS`` ago, or pending with no
      due time (waiting for its channel) while the channel is enabled.
    """
    result = SweepResult()
    now = timezone.now()
    external = [b for b in registered_backends() if b.external]
    enabled = [b.name for b in external if b.is_enabled()]
    timeout = timedelta(seconds=settings.DATAFI_SENDING_TIMEOUT_SECONDS)
    with transaction.atomic():
        stuck = list(Delivery.objects.select_for_update(skip_locked=True)
                     .filter(SENT_ALONE, status=Delivery.Status.SENDING,
                             sending_started_at__lt=now - timeout)[:batch_size])
        for delivery in stuck:
            _interrupted(delivery, get_backend(delivery.channel), now=now)
        result.interrupted = len(stuck)

        grace = timedelta(seconds=settings.DATAFI_DELIVERY_GRACE_SECONDS)
        overdue = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(SENT_ALONE, status=Delivery.Status.PENDING, channel__in=enabled)
            .filter(Q(next_attempt_at__lt=now - grace) | Q(next_attempt_at__isnull=True))
            .only("pk", "kind", "channel", "priority")[:batch_size]
        )
        Delivery.objects.filter(pk__in=[d.pk for d in overdue]).update(next_attempt_at=now)
        deliveries_enqueue(overdue)
        result.overdue = len(overdue)
    if result.overdue or result.interrupted:
        logger.info("delivery sweep: %d overdue enqueued, %d interrupted sends picked up",
                    result.overdue, result.interrupted)
    return result


def _interrupted(delivery: Delivery, backend: ChannelBackend | None, *, now) -> None:
    error = (f"No result within {settings.DATAFI_SENDING_TIMEOUT_SECONDS:g} s: the worker "
             "stopped during the send.")
    DeliveryAttempt.objects.filter(delivery=delivery, number=delivery.attempts,
                                   outcome="").update(
        outcome=DeliveryAttempt.Outcome.TRANSIENT, error=error,
        duration_ms=round((now - delivery.sending_started_at).total_seconds() * 1000))
    delivery.last_error = error
    if backend is None or delivery.attempts >= backend.max_attempts_for(_recipient(delivery)):
        _finish(delivery, Delivery.Status.FAILED, now=now, status_code=None, error=error)
        if backend is not None:
            backend.delivery_finished(recipient=_recipient(delivery), delivered=False,
                                      status_code=None, error=error)
        return
    delivery.status = Delivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.sending_started_at = None
    delivery.save(update_fields=["status", "next_attempt_at", "sending_started_at",
                                 "last_error", "updated_at"])
    deliveries_enqueue([delivery])
