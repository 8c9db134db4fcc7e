"""The delivery sweep (beat): what a lost message or a dead worker left behind."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels_app.backends import ChannelBackend, get_backend, registered_backends

from ..models import SENT_ALONE, Delivery, DeliveryAttempt
from .enqueue import deliveries_enqueue
from .send import delivery_finish, delivery_recipient

logger = logging.getLogger(__name__)


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
    ready = [b.name for b in registered_backends()
             if b.external and not b.configuration_problems()]
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
            .filter(SENT_ALONE, status=Delivery.Status.PENDING, channel__in=ready)
            .filter(Q(next_attempt_at__lt=now - grace) | Q(next_attempt_at__isnull=True))
            .only("pk", "kind", "channel", "priority", "event_id")[:batch_size]
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
    recipient = delivery_recipient(delivery)
    if backend is None or delivery.attempts >= backend.max_attempts_for(recipient):
        delivery_finish(delivery, Delivery.Status.FAILED, now=now, status_code=None, error=error)
        if backend is not None:
            backend.delivery_finished(recipient=recipient, delivered=False,
                                      status_code=None, error=error)
        return
    delivery.status = Delivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.sending_started_at = None
    delivery.save(update_fields=["status", "next_attempt_at", "sending_started_at",
                                 "last_error", "updated_at"])
    deliveries_enqueue([delivery])
