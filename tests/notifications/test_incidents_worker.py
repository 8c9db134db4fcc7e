"""Escalation with a real worker and a real beat: an escalation is a row that beat's sweep
sends, whichever process routed the event (no countdown task that a worker restart loses),
once; an acknowledged event's escalation never goes out. A minute is a second here
(``DATAFI_ESCALATION_MINUTE_SECONDS`` for the worker, ``settings`` for this process)."""

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config import control_plane
from events.models import EventType
from notifications.models import Escalation, Notification, RoutingRule
from tests.support import api_client_for, emit_and_route, wait_until

pytestmark = pytest.mark.worker

LOST = "data_source.connection_lost"


def sweeps_done(worker) -> int:
    """Escalation sweeps the worker finished, by its log."""
    return sum(1 for line in worker.log_path.read_text().splitlines()
               if control_plane.ESCALATION_SWEEP in line and "succeeded" in line)


def test_beats_sweep_escalates_an_unacknowledged_event_once_and_not_an_acknowledged_one(
        celery_worker, beat, make_workspace, make_user, smtp_server, email_on, settings):
    settings.DATAFI_ESCALATION_MINUTE_SECONDS = 1
    # Every 2 s rather than 15, as an admin may tune it under "Periodic tasks": beat
    # picks the change up while it runs.
    sweep = PeriodicTask.objects.get(task=control_plane.ESCALATION_SWEEP)
    sweep.interval, _ = IntervalSchedule.objects.get_or_create(
        every=2, period=IntervalSchedule.SECONDS)
    sweep.save()
    server = smtp_server()
    email_on(server)
    person = make_user("oncall", email="oncall@datafi.test")
    team = make_workspace("Ops", users=[person])
    RoutingRule.objects.create(event_type=EventType.objects.get(key=LOST), channels=["in_app"],
                               escalate={"after_minutes": 3, "channels": ["email"],
                                         "emails": ["lead@datafi.test"]})
    # Routed here, committed: the worker never saw these events, only beat's sweep will.
    ignored = emit_and_route(LOST, team, datasource_name="Warehouse")
    handled = emit_and_route(LOST, team, datasource_name="Lake")
    mine = Notification.objects.get(user=person, event=handled)
    assert api_client_for(person).post(
        f"/api/notifications/{mine.pk}/acknowledge/").status_code == 200

    def escalated():
        return [m for m in server.received if "Escalated:" in m.message["Subject"]]

    wait_until(lambda: len(escalated()) == 2, timeout=120,
               message="the escalation emails (member and lead) from beat's sweep")
    runs = sweeps_done(celery_worker)
    wait_until(lambda: sweeps_done(celery_worker) >= runs + 2, timeout=120,
               message="two more escalation sweeps")

    assert sorted(m.rcpt_tos[0] for m in escalated()) == ["lead@datafi.test",
                                                         "oncall@datafi.test"]
    assert {m.message["Subject"] for m in escalated()} == {
        "[Critical] Escalated: Connection lost: Warehouse"}
    assert dict(Escalation.objects.values_list("event_id", "status")) == {
        ignored.pk: "sent", handled.pk: "cancelled"}
    ignored.refresh_from_db()
    assert ignored.escalated_at is not None
