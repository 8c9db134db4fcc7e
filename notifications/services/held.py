"""Releasing what quiet hours held: once a user's quiet hours end (or are switched off), their
held deliveries go out as ONE digest per (channel, target), through the delivery pipeline.

Run by beat every few seconds (``notifications.held_release``): the release is due within a
minute of the end. Exactly once: the held rows are claimed with SKIP LOCKED into a new
digest in one transaction, like a flush's claim.
"""

import logging
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from channels_app.backends import get_backend
from events.catalog import Priority

from ..deliveries.enqueue import deliveries_enqueue
from ..models import Delivery, Digest

logger = logging.getLogger(__name__)

#: Held deliveries released per transaction.
RELEASE_BATCH = 1000


def held_release(*, now=None, batch_size: int = RELEASE_BATCH) -> int:
    """Release every held delivery whose time has come (by ``now``, default the clock's);
    returns how many digests were made.

    Safe to run concurrently with itself (SKIP LOCKED) and to run again. A target's held
    items become one digest (its delivery's priority is the highest among them), sent by
    the pipeline once this commits.
    """
    due_by = now or timezone.now()
    made = 0
    while True:
        with transaction.atomic():
            due = list(Delivery.objects.select_for_update(skip_locked=True)
                       .filter(status=Delivery.Status.HELD, release_at__lte=due_by)
                       .order_by("release_at")
                       .only("pk", "channel", "target", "target_data", "user_id",
                             "priority")[:batch_size])
            if not due:
                return made
            now = timezone.now()
            groups = defaultdict(list)
            for item in due:
                groups[(item.channel, item.target)].append(item)
            digests, sends = [], []
            for (channel, target), items in groups.items():
                backend = get_backend(channel)
                if backend is None or not backend.external:
                    continue  # an in-process channel is never held; a removed one waits
                priority = min((item.priority for item in items), key=Priority.VALUES.index)
                digest = Digest(channel=channel, bucket="", target=target,
                                user_id=items[0].user_id, target_data=items[0].target_data,
                                item_count=len(items))
                digests.append((digest, items))
                sends.append(Delivery(id=digest.pk, kind=Delivery.Kind.DIGEST, digest=digest,
                                      channel=channel, target=target, user_id=digest.user_id,
                                      target_data=digest.target_data, priority=priority,
                                      bucket="", next_attempt_at=now))
            Digest.objects.bulk_create([digest for digest, _ in digests])
            for digest, items in digests:
                Delivery.objects.filter(pk__in=[item.pk for item in items]).update(
                    digest=digest, status=Delivery.Status.SENDING, updated_at=now)
            Delivery.objects.bulk_create(sends)
            deliveries_enqueue(sends)
            made += len(digests)
        logger.info("released %d held deliveries in %d digests", len(due), len(digests))
        if len(due) < batch_size:
            return made
