"""The control plane: one table of every task, its queue, retries and schedule; settings,
the tasks, beat's schedule and the floor's routing jobs all derive from it."""

from io import StringIO

from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from channels_app.backends import registered_backends
from config import control_plane
from config.celery import app
from events import dispatch
from tests.support import ROOT


def sync() -> str:
    out = StringIO()
    call_command("sync_schedule", stdout=out)
    return out.getvalue()


def test_every_task_is_in_the_table_and_routed_to_its_queue():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks
            if name.startswith(("events.", "notifications.", "operations."))}

    assert ours == {task.name for task in control_plane.TASKS}
    for task in control_plane.TASKS:
        assert app.amqp.router.route({}, task.name)["queue"].name == task.queue, task.name
        assert app.tasks[task.name].max_retries == task.retries, task.name
        assert app.tasks[task.name].acks_late, task.name
    assert set(control_plane.QUEUES) == {q.name for q in app.conf.task_queues}


def test_the_procfile_serves_every_queue_of_the_table_and_of_the_channels():
    served = set()
    for line in (ROOT / "Procfile").read_text().splitlines():
        if " worker " in line:
            served |= set(line.split("--queues ")[1].split()[0].split(","))
    channel_queues = {q for b in registered_backends()
                      for q in (b.queue, b.batched_queue, b.bulk_queue)}

    assert served == set(control_plane.QUEUES) >= channel_queues


def test_the_floor_publishes_its_routing_jobs_through_the_tasks_notifications_registered():
    app.loader.import_default_modules()
    assert {job: dispatch._tasks[job].name for job in dispatch.JOBS} == {
        dispatch.ROUTE_URGENT: control_plane.EVENT_ROUTE_URGENT,
        dispatch.ROUTE: control_plane.EVENT_ROUTE,
        dispatch.ROUTE_PENDING: control_plane.EVENTS_ROUTE_PENDING,
    }
    events_source = "\n".join(path.read_text() for path in (ROOT / "events").rglob("*.py"))
    named = [task.name for task in control_plane.TASKS
             if task.name.startswith("notifications.") and task.name in events_source]
    assert not named, f"the floor names the routing app's tasks: {named}"


def test_sync_schedule_writes_every_periodic_run_once(db):
    assert not PeriodicTask.objects.exists()  # migrations write no schedule

    first = sync()
    again = sync()

    wanted = {schedule.name: (task.name, schedule.every_seconds)
              for task, schedule in control_plane.schedules()}
    rows = {row.name: row for row in PeriodicTask.objects.select_related("interval")}
    assert set(rows) == set(wanted)
    for name, (task, seconds) in wanted.items():
        row = rows[name]
        period = {"seconds": 1, "minutes": 60, "hours": 3600}[row.interval.period]
        assert (row.task, row.interval.every * period, row.enabled) == (task, seconds, True)
    assert f"{len(wanted)} created" in first and "0 created, 0 updated" in again
    assert PeriodicTasks.objects.get(ident=1).last_update is not None  # beat is told


def test_sync_schedule_keeps_what_an_admin_tuned_and_adopts_entries_by_name(db):
    sync()
    flush = PeriodicTask.objects.get(name="Flush 5 min digests (medium)")
    every_ten, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    flush.interval, flush.enabled = every_ten, False
    flush.save()
    # An entry an older version wrote (by a migration) with a task name of its own.
    PeriodicTask.objects.filter(name="Sweep unrouted events (outbox)").update(
        task="events.old_outbox_sweep")

    assert "updated Sweep unrouted events (outbox)" in sync()

    flush.refresh_from_db()
    assert (flush.interval.every, flush.interval.period, flush.enabled) == (10, "minutes", False)
    sweep = PeriodicTask.objects.get(name="Sweep unrouted events (outbox)")
    assert sweep.task == control_plane.OUTBOX_SWEEP
    assert PeriodicTask.objects.filter(name="Sweep unrouted events (outbox)").count() == 1


def test_bin_serve_writes_the_schedule_before_starting():
    serve = (ROOT / "bin" / "serve").read_text()

    assert serve.index("sync_schedule") < serve.index("procfile_run")
