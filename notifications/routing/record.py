"""Writing a decided plan: rows, never network calls.

Must run inside the routing transaction that holds the events' locks. On PostgreSQL the
number of statements does not depend on the number of events or recipients (SQLite splits
large inserts): one insert per in-process channel (the bell's notifications), one insert
of deliveries, the policies' own writes, one update of the events.
"""

from collections import defaultdict

from django.utils import timezone

from events.services.lifecycle import RoutingOutcome, events_mark_routed

from .. import metrics as pipeline_metrics
from ..models import Delivery
from .plan import Decision, RoutingPlan


def plan_record(plan: RoutingPlan, *, policies=()) -> list[Delivery]:
    """Write ``plan``; returns the deliveries to send once the transaction commits.

    Each recipient of a live route becomes: for an in-process channel sent now, its row
    (``ChannelBackend.write_now``); otherwise a delivery, pending now or in its digest
    bucket. A recipient a policy held is a ``held`` delivery with its ``release_at``; one
    it dropped a ``skipped`` delivery with the decision and the reason, so the delivery
    log and explain can say why. The events get their status (routed, or the one a policy
    gave the whole event) with the channels and the rule that chose them.
    """
    now = timezone.now()
    rows = []
    in_process = defaultdict(list)
    routed = defaultdict(int)  # channel -> recipients to notify (metrics)
    for route in plan.routes():
        backend, event = route.backend, route.event
        sent_by_backend = not backend.external and not route.bucket
        verdicts = route.verdicts
        if sent_by_backend:
            in_process[backend].append(route)
            if not verdicts:  # the backend writes every row: nothing to do per recipient
                routed[backend.name] += len(route.recipients)
                continue
        for recipient in route.recipients:
            verdict = verdicts.get(recipient.key) if verdicts else None
            if verdict is None:
                routed[backend.name] += 1
                if sent_by_backend:
                    continue
                rows.append(Delivery(
                    event=event, channel=backend.name, user_id=recipient.user_id,
                    target=recipient.target, target_data=recipient.target_data,
                    priority=event.priority, bucket=route.bucket,
                    next_attempt_at=None if route.bucket else now))
            elif verdict.decision == Decision.HELD:
                rows.append(Delivery(
                    event=event, channel=backend.name, user_id=recipient.user_id,
                    target=recipient.target, target_data=recipient.target_data,
                    priority=event.priority, bucket=route.bucket,
                    status=Delivery.Status.HELD, release_at=verdict.release_at,
                    decision=verdict.decision, reason=verdict.detail[:300]))
            else:
                rows.append(Delivery(
                    event=event, channel=backend.name, user_id=recipient.user_id,
                    target=recipient.target, target_data=recipient.target_data,
                    priority=event.priority, bucket=route.bucket,
                    status=Delivery.Status.SKIPPED, decision=verdict.decision,
                    reason=verdict.detail[:300]))
    for backend, routes in in_process.items():
        backend.write_now(routes)
    written = Delivery.objects.bulk_create(rows, batch_size=1000)
    for policy in policies:
        policy.commit(plan)
    pipeline_metrics.recipients_routed(routed)
    events_mark_routed([_outcome(event_plan) for event_plan in plan.events])
    return [d for d in written if d.status == Delivery.Status.PENDING and not d.bucket]


def _outcome(event_plan) -> RoutingOutcome:
    """What the events app records of routing's decision for one event."""
    verdict = event_plan.verdict
    by = verdict.by_id if verdict is not None else ""
    return RoutingOutcome(
        event_id=event_plan.event.pk, status=event_plan.status,
        channels=[route.channel for route in event_plan.routes] if verdict is None else [],
        source=event_plan.routing.source,
        silenced_by=int(by) if by and verdict.decision == Decision.SILENCED else None,
        grouped_into=by if by and verdict.decision == Decision.GROUPED else None,
        inhibited_by=by if by and verdict.decision == Decision.INHIBITED else None)
