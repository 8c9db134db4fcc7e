"""One attempt of one send: claim, render and send outside any transaction, record."""

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from channels_app.backends import ChannelBackend, Recipient, get_backend
from channels_app.errors import DeliveryError
from core.logcontext import log_context_add

from .. import metrics as pipeline_metrics
from ..in_app import event_title
from ..models import SENT_ALONE, Delivery, DeliveryAttempt, Digest
from ..routing.audience import AudienceCheck
from .claims import (
    RENEW_SECONDS,
    Attempt,
    claim,
    claim_committed,
    claims_renew,
    commit_without_waiting_for_disk,
    due,
    execute_without_waiting_for_disk,
)
from .enqueue import deliveries_enqueue

logger = logging.getLogger(__name__)

ERROR_KEEP_CHARS = 2000


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after failed attempt number ``attempt`` (1-based).

    ``DATAFI_RETRY_BASE_SECONDS`` x 2^(attempt-1), within +-20% jitter so retries of many
    deliveries spread out yet still grow, capped at ``DATAFI_RETRY_MAX_SECONDS``.
    """
    delay = settings.DATAFI_RETRY_BASE_SECONDS * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
    return min(delay, settings.DATAFI_RETRY_MAX_SECONDS)


class Outcome:
    """What ``delivery_send`` did, for the task's log and the tests."""

    SKIPPED = "skipped"  # vanished, not pending, not due, or not sent by itself
    WAITING = "waiting"  # the channel is not ready: the delivery waits as pending
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a digest whose every recipient item left the audience


def delivery_send(*, delivery_id, channel: str | None = None) -> str:
    """Make one attempt at sending one delivery (or digest delivery); idempotent.

    Must not be called inside a transaction: the claim commits before the network call.
    Returns an ``Outcome`` value.
    """
    return deliveries_send(delivery_ids=[delivery_id], channel=channel)[0]


def deliveries_send(*, delivery_ids, channel: str | None = None) -> list[str]:
    """One attempt at each of ``delivery_ids``, in order, over each channel's kept
    connection; idempotent. Each delivery is claimed, attempted and recorded on its own: the
    claims commit together before any network call, each outcome is recorded as soon as it
    is known. A worker killed mid-batch leaves the batch's unsent claims to the sweep
    (``DATAFI_SENDING_TIMEOUT_SECONDS``) and sends nothing twice but the message that was on
    the wire (with the same Message-ID). Returns each delivery's ``Outcome``.

    ``channel``: the deliveries', as the message that asks says (messages of older versions
    do not): then they are claimed at once, not read first (the claim takes only that
    channel's rows).
    """
    pks = [str(pk) for pk in delivery_ids]
    if channel is not None:
        outcomes = _send_channel(get_backend(channel), pks, channel)
        return [outcomes.get(pk, Outcome.SKIPPED) for pk in pks]
    channels = {str(pk): found for pk, found in
                Delivery.objects.filter(pk__in=pks).values_list("pk", "channel")}
    by_channel: dict[str, list[str]] = {}
    for pk in dict.fromkeys(pk for pk in pks if pk in channels):  # in the message's order
        by_channel.setdefault(channels[pk], []).append(pk)
    outcomes = {}
    for found, ids in by_channel.items():
        outcomes.update(_send_channel(get_backend(found), ids, found))
    return [outcomes.get(pk, Outcome.SKIPPED) for pk in pks]


def event_deliveries_send(*, event_id, channel: str, batch: int, then=None) -> int:
    """Send up to ``batch`` of the pending, due, immediate sends of one event on one channel
    (a large audience's), claimed with SKIP LOCKED where the database has it, so several
    workers share the audience. A full batch calls ``then()`` (which queues the next one)
    once its claim has committed, before sending. Returns how many it sent."""
    backend = get_backend(channel)
    if backend is None or not backend.external:
        return 0
    now = timezone.now()
    with backend.batch():  # the settings read once, for the check and the sends
        with transaction.atomic():
            pks = list(due(Delivery.objects.filter(
                event_id=event_id, channel=channel, kind=Delivery.Kind.EVENT, bucket="",
                status=Delivery.Status.PENDING), now).order_by("pk")
                .select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch])
            if not pks:
                return 0
            if backend.configuration_problems():
                Delivery.objects.filter(pk__in=pks).update(next_attempt_at=None)
                return 0  # waits: the channel becoming ready enqueues them (and the sweep)
            attempts = claim(pks, now=now)
        if len(pks) == batch and then is not None:
            then()
        _attempt_all(attempts, backend)
    return len(attempts)


def _send_channel(backend: ChannelBackend | None, pks: list[str], channel: str) -> dict:
    """Claim, send and record the deliveries of ``pks`` on ``channel`` that are pending,
    due and sent by themselves (the claim picks them); the others are skipped."""
    if backend is None or not backend.external:
        return {}
    with backend.batch():  # the settings read once, for the check and the sends
        if backend.configuration_problems():
            # Waits with no due time: the channel becoming ready enqueues it (and the sweep).
            waiting = list(Delivery.objects.filter(
                SENT_ALONE, pk__in=pks, channel=channel, status=Delivery.Status.PENDING))
            Delivery.objects.filter(pk__in=[d.pk for d in waiting],
                                    status=Delivery.Status.PENDING).update(next_attempt_at=None)
            for delivery in waiting:
                _log_about(delivery)
            return {str(d.pk): Outcome.WAITING for d in waiting}
        attempts = claim_committed(pks, now=timezone.now(), channel=channel)
        return _attempt_all(attempts, backend)


def _attempt_all(attempts: list[Attempt], backend: ChannelBackend) -> dict:
    """Render, send and record each claimed attempt, in the backend's batch."""
    if not attempts:
        return {}
    events = {a.delivery.event_id: a.delivery.event for a in attempts if a.delivery.event_id}
    titles: dict = {}
    outcomes = {}
    renewed, ours = time.monotonic(), None
    for index, attempt in enumerate(attempts):
        if time.monotonic() - renewed >= RENEW_SECONDS:  # a long batch: keep its claim
            ours, renewed = claims_renew(attempts[index:], now=timezone.now()), time.monotonic()
        if ours is not None and str(attempt.delivery.pk) not in ours:
            logger.warning("delivery %s: taken back by the sweep before its turn in a "
                           "batch; not sent by this one", attempt.delivery.pk)
            outcomes[str(attempt.delivery.pk)] = Outcome.SKIPPED
            continue
        _log_about(attempt.delivery)
        if attempt.delivery.event_id in events:
            attempt.emitted_at = events[attempt.delivery.event_id].created_at
        outcomes[str(attempt.delivery.pk)] = _attempt_one(attempt, backend, events, titles)
    return outcomes


def _log_about(delivery: Delivery) -> None:
    """The log lines that follow are about ``delivery`` (and its event or digest)."""
    log_context_add(delivery_id=delivery.pk, event_id=delivery.event_id,
                    digest_id=delivery.digest_id)


def _attempt_one(attempt: Attempt, backend: ChannelBackend, events: dict, titles: dict
                 ) -> str:
    started = time.monotonic()
    status_code, response = None, ""
    try:
        message = _render(attempt.delivery, backend, events, titles)
        if message is None:
            delivery = attempt.delivery
            why = delivery.purpose if delivery.kind == Delivery.Kind.EVENT else "digest"
            return _record_cancelled(attempt, NOTHING_TO_SEND[why])
        result = backend.send(message)
        status_code, response = result.status_code, result.response
    except DeliveryError as error:
        outcome = (DeliveryAttempt.Outcome.TRANSIENT if error.transient
                   else DeliveryAttempt.Outcome.PERMANENT)
        return _record(attempt, backend, outcome=outcome, status_code=error.code,
                       error=error.detail, duration=time.monotonic() - started,
                       retry_after=error.retry_after, error_kind=error.kind)
    except ValueError as exc:  # the message cannot be built (e.g. not a valid address)
        return _record(attempt, backend, outcome=DeliveryAttempt.Outcome.PERMANENT,
                       status_code=None, error=f"The message cannot be built: {exc}",
                       duration=time.monotonic() - started, error_kind="unbuildable")
    except Exception as exc:  # a bug in a channel: recorded now, retried, never left sending
        logger.exception("delivery %s: the %s channel failed unexpectedly",
                         attempt.delivery.pk, backend.name)
        return _record(attempt, backend, outcome=DeliveryAttempt.Outcome.TRANSIENT,
                       status_code=None, duration=time.monotonic() - started,
                       error=f"Unexpected error in the {backend.label} channel: "
                             f"{type(exc).__name__}: {exc}", error_kind="unexpected")
    return _record(attempt, backend, outcome=DeliveryAttempt.Outcome.DELIVERED,
                   status_code=status_code, response=response,
                   duration=time.monotonic() - started)


def delivery_recipient(delivery: Delivery) -> Recipient:
    """The backend's recipient of ``delivery``, as routing wrote it."""
    return Recipient(target=delivery.target, user_id=delivery.user_id,
                     target_data=delivery.target_data)


#: Why a send had nothing to say, by purpose (an event's) or for a digest.
NOTHING_TO_SEND = {
    "digest": "Every recipient of this digest left the events' audience.",
    Delivery.Purpose.RESOLUTION: "This receiver no longer takes resolutions (its format "
                                 "changed since it got the event).",
    Delivery.Purpose.NOTIFY: "Nothing to send.",
    Delivery.Purpose.ESCALATION: "Nothing to send.",
}
ESCALATED = "Escalated: "


def _render(delivery: Delivery, backend: ChannelBackend, events: dict, titles: dict):
    """The message of ``delivery``, or None when there is nothing to send (a digest whose
    recipients left, a resolution this receiver's format does not tell). ``events``: the
    batch's events by id (loaded with what rendering reads); ``titles``: their rendered
    titles, filled here."""
    recipient = delivery_recipient(delivery)
    if delivery.kind == Delivery.Kind.EVENT:
        event = events[delivery.event_id]
        if event.pk not in titles:
            titles[event.pk] = event_title(event)
        title = titles[event.pk]
        if delivery.purpose == Delivery.Purpose.RESOLUTION:
            return backend.render_resolution(event=event, title=title, recipient=recipient,
                                             delivery_id=delivery.pk)
        if delivery.purpose == Delivery.Purpose.ESCALATION:
            title = ESCALATED + title
        return backend.render_event(event=event, title=title, recipient=recipient,
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
    return backend.render_digest(priority=delivery.priority, events=events,
                                 recipient=recipient, delivery_id=delivery.pk)


def _record(attempt: Attempt, backend: ChannelBackend, *, outcome: str,
            status_code: int | None, duration: float, error: str = "", response: str = "",
            retry_after: float | None = None, error_kind: str = "") -> str:
    """Write the attempt's outcome and the delivery's next state, in one transaction."""
    pipeline_metrics.attempt_made(channel=backend.name, outcome=outcome, seconds=duration,
                                  error_kind=error_kind)
    now = timezone.now()
    delivery, number = attempt.delivery, attempt.record.number
    error = error[:ERROR_KEEP_CHARS]
    if (outcome == DeliveryAttempt.Outcome.DELIVERED and delivery.kind == Delivery.Kind.EVENT
            and connection.vendor == "postgresql"):
        return _record_delivered(attempt, backend, status_code=status_code, now=now,
                                 response=response, duration=duration)
    with transaction.atomic():
        commit_without_waiting_for_disk()
        DeliveryAttempt.objects.filter(pk=attempt.record.pk).update(
            outcome=outcome, status_code=status_code, error=error, response=response,
            duration_ms=max(0, round(duration * 1000)))
        current = Delivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if current is None:
            return Outcome.SKIPPED
        if outcome == DeliveryAttempt.Outcome.DELIVERED:
            # Whatever the sweep thought meanwhile, the message is out: delivered wins.
            delivery_finish(current, Delivery.Status.DELIVERED, now=now, status_code=status_code,
                            emitted_at=attempt.emitted_at)
            backend.delivery_finished(recipient=delivery_recipient(current), delivered=True,
                                      status_code=status_code, error="")
            return Outcome.DELIVERED
        if current.status != Delivery.Status.SENDING or current.attempts != number:
            return Outcome.SKIPPED  # the sweep gave the row to a newer attempt
        current.last_error, current.last_status_code = error, status_code
        if (outcome == DeliveryAttempt.Outcome.TRANSIENT
                and number < backend.max_attempts_for(delivery_recipient(current))):
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
        delivery_finish(current, Delivery.Status.FAILED, now=now, status_code=status_code,
                        error=error)
        backend.delivery_finished(recipient=delivery_recipient(current), delivered=False,
                                  status_code=status_code, error=error)
        logger.warning("delivery %s failed after %d attempt(s): %s", delivery.pk, number, error)
        return Outcome.FAILED


def _record_delivered(attempt: Attempt, backend: ChannelBackend, *, status_code, response,
                      duration: float, now) -> str:
    """PostgreSQL, an event's send delivered: the attempt's outcome and the delivery's state
    in one statement, one round trip, its commit not waiting for disk (what
    ``delivery_finish`` writes for an event's delivery; delivered wins whatever the sweep
    thought meanwhile)."""
    delivery = attempt.delivery
    with connection.cursor() as cursor:
        execute_without_waiting_for_disk(
            cursor, f"WITH recorded AS (UPDATE {DeliveryAttempt._meta.db_table} SET "  # noqa: S608
            "outcome = %s, status_code = %s, error = '', response = %s, duration_ms = %s "
            f"WHERE id = %s) UPDATE {Delivery._meta.db_table} SET status = %s, "
            "delivered_at = %s, last_status_code = %s, last_error = '', next_attempt_at = NULL, "
            "sending_started_at = NULL, updated_at = %s WHERE id = %s RETURNING id",
            [DeliveryAttempt.Outcome.DELIVERED, status_code, response,
             max(0, round(duration * 1000)), attempt.record.pk, Delivery.Status.DELIVERED, now,
             status_code, now, delivery.pk])
        if cursor.fetchone() is None:
            return Outcome.SKIPPED  # deleted meanwhile
    pipeline_metrics.delivery_finished(channel=delivery.channel, status=Delivery.Status.DELIVERED,
                                       event_id=delivery.event_id, now=now,
                                       emitted_at=attempt.emitted_at)
    if type(backend).delivery_finished is not ChannelBackend.delivery_finished:
        with transaction.atomic():  # what the backend keeps (an endpoint's health)
            backend.delivery_finished(recipient=delivery_recipient(delivery), delivered=True,
                                      status_code=status_code, error="")
    return Outcome.DELIVERED


def _record_cancelled(attempt: Attempt, reason: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=attempt.record.pk).delete()
        Delivery.objects.filter(pk=attempt.delivery.pk).update(
            status=Delivery.Status.CANCELLED, attempts=F("attempts") - 1,
            sending_started_at=None, updated_at=now, last_error=reason)
        Digest.objects.filter(pk=attempt.delivery.digest_id).update(
            status=Digest.Status.CANCELLED, sent_at=now)
    return Outcome.CANCELLED


def delivery_finish(delivery: Delivery, status: str, *, now, status_code: int | None,
                    error: str = "", emitted_at=None) -> None:
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
    pipeline_metrics.delivery_finished(channel=delivery.channel, status=status,
                                       event_id=delivery.event_id, now=now,
                                       emitted_at=emitted_at)
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
