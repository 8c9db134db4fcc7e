"""emit(): validation before writing, the stored event, dedupe, cost, enqueue after commit."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import emit
from events.exceptions import (
    EmitError,
    InvalidDedupeKey,
    InvalidOccurredAt,
    InvalidPayload,
    InvalidRecipients,
    PayloadTooLarge,
    UnknownEventType,
    UnknownWorkspace,
)
from events.models import Event, EventType, Membership, Workspace
from notifications.models import Delivery, Notification
from notifications.routing.route import event_route

LIMIT = 64 * 1024


def person(username: str, **extra):
    """A user without password hashing (hashing is most of the cost of creating one)."""
    return get_user_model().objects.create(
        username=username, email=f"{username}@example.com", password="!", **extra
    )


def workspace_of(size: int, name: str = "Analytics", *, users=()) -> Workspace:
    """A workspace with ``users`` plus ``size`` new members; ``.people`` lists them all."""
    User = get_user_model()
    prefix = name.lower()
    new = User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", password="!")
        for i in range(size)
    )
    workspace = Workspace.objects.create(name=name)
    Membership.objects.bulk_create(
        Membership(workspace=workspace, user=u) for u in [*users, *new]
    )
    workspace.people = list(
        User.objects.filter(memberships__workspace=workspace).order_by("pk")
    )
    return workspace


@pytest.fixture
def workspace(db):
    return workspace_of(2)


@pytest.fixture
def people(workspace):
    """Someone outside the workspace and an inactive member, to address wrongly."""
    outsider = person("outsider")
    workspace_of(0, "Elsewhere", users=[outsider])
    inactive = person("gone", is_active=False)
    Membership.objects.create(workspace=workspace, user=inactive)
    return {"outsider": outsider, "inactive": inactive}


# --- validation: a specific error naming the problem, and nothing written -----------------

def with_workspace(**kwargs):
    return lambda ws, people: {"workspace": ws, **kwargs}


INVALID = [
    # (id, event type, kwargs(workspace, people), error class, message fragment)
    ("unknown-type", "data_source.no_such_thing", with_workspace(),
     UnknownEventType, "unknown event type 'data_source.no_such_thing'"),
    ("empty-type", "", with_workspace(), UnknownEventType, "event_type must be an event type key"),
    ("type-not-a-string", 42, with_workspace(), UnknownEventType, "got 42"),
    ("payload-not-serializable", "query.query_failed",
     with_workspace(payload={"started": object()}),
     InvalidPayload, "payload is not JSON-serializable"),
    ("payload-datetime", "query.query_failed",
     with_workspace(payload={"at": datetime(2024, 1, 1, tzinfo=UTC)}),
     InvalidPayload, "not JSON-serializable"),
    ("payload-nan", "query.query_failed", with_workspace(payload={"ratio": float("nan")}),
     InvalidPayload, "not JSON-serializable"),
    ("payload-list", "query.query_failed", with_workspace(payload=["a", "b"]),
     InvalidPayload, "payload must be a JSON object, got list"),
    ("payload-string", "query.query_failed", with_workspace(payload='{"a": 1}'),
     InvalidPayload, "payload must be a JSON object, got str"),
    ("payload-oversized", "query.query_failed",
     with_workspace(payload={"blob": "x" * LIMIT}),
     PayloadTooLarge, f"the limit is {LIMIT} bytes"),
    ("unknown-workspace", "query.query_failed", lambda ws, p: {"workspace": "ws_doesnotexist"},
     UnknownWorkspace, "unknown workspace 'ws_doesnotexist'"),
    ("workspace-int", "query.query_failed", lambda ws, p: {"workspace": 7},
     UnknownWorkspace, "workspace must be a workspace id like 'ws_abc123', got 7"),
    ("workspace-unsaved", "query.query_failed", lambda ws, p: {"workspace": Workspace(name="x")},
     UnknownWorkspace, "workspace is not saved"),
    ("recipient-not-member", "query.query_failed",
     lambda ws, p: {"workspace": ws, "recipients": [ws.people[0], p["outsider"]]},
     InvalidRecipients, "are not members of workspace"),
    ("recipient-inactive", "query.query_failed",
     lambda ws, p: {"workspace": ws, "recipients": [p["inactive"]]},
     InvalidRecipients, "are not members of workspace"),
    ("recipient-inactive-no-workspace", "query.query_failed",
     lambda ws, p: {"recipients": [p["inactive"].pk]},
     InvalidRecipients, "are not active users"),
    ("recipient-unknown-id", "query.query_failed",
     lambda ws, p: {"workspace": ws, "recipients": [987654]},
     InvalidRecipients, "recipients [987654] are not members"),
    ("recipients-string", "query.query_failed", with_workspace(recipients="alice"),
     InvalidRecipients, "recipients must be a list of users or user ids"),
    ("recipients-not-iterable", "query.query_failed", with_workspace(recipients=5),
     InvalidRecipients, "recipients must be a list of users or user ids"),
    ("recipient-bad-type", "query.query_failed", with_workspace(recipients=["alice"]),
     InvalidRecipients, "recipients must be users or user ids, got 'alice'"),
    ("recipient-bool", "query.query_failed", with_workspace(recipients=[True]),
     InvalidRecipients, "got True"),
    ("recipients-empty", "query.query_failed", with_workspace(recipients=[]),
     InvalidRecipients, "recipients is empty"),
    ("dedupe-empty", "query.query_failed", with_workspace(dedupe_key=""),
     InvalidDedupeKey, "dedupe_key must be a non-empty string"),
    ("dedupe-blank", "query.query_failed", with_workspace(dedupe_key="   "),
     InvalidDedupeKey, "dedupe_key must be a non-empty string"),
    ("dedupe-not-string", "query.query_failed", with_workspace(dedupe_key=12),
     InvalidDedupeKey, "dedupe_key must be a non-empty string"),
    ("dedupe-too-long", "query.query_failed", with_workspace(dedupe_key="k" * 201),
     InvalidDedupeKey, "dedupe_key is 201 characters; the limit is 200"),
    ("occurred-naive", "query.query_failed",
     with_workspace(occurred_at=datetime(2024, 5, 1, 12, 0)),
     InvalidOccurredAt, "occurred_at must be timezone-aware"),
    ("occurred-string", "query.query_failed",
     with_workspace(occurred_at="2024-05-01T12:00:00Z"),
     InvalidOccurredAt, "occurred_at must be a datetime"),
]


@pytest.mark.parametrize(
    ("event_type", "make_kwargs", "error", "message"),
    [case[1:] for case in INVALID], ids=[case[0] for case in INVALID],
)
def test_invalid_emit_raises_a_specific_error_and_writes_nothing(
    workspace, people, django_capture_on_commit_callbacks, event_type, make_kwargs, error, message
):
    kwargs = make_kwargs(workspace, people)
    events_before = Event.objects.count()

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(error) as caught:
        emit(event_type, **kwargs)

    assert isinstance(caught.value, EmitError)
    assert isinstance(caught.value, ValueError)
    assert message in str(caught.value)
    assert Event.objects.count() == events_before
    assert callbacks == []


def test_payload_of_exactly_64_kib_is_accepted_one_byte_more_is_not(workspace):
    overhead = len('{"blob":""}')
    at_limit = {"blob": "x" * (LIMIT - overhead)}

    event = emit("query.query_failed", workspace=workspace, payload=at_limit)
    assert Event.objects.get(pk=event.pk).payload == at_limit

    with pytest.raises(PayloadTooLarge, match=f"payload is {LIMIT + 1} bytes"):
        emit("query.query_failed", workspace=workspace,
             payload={"blob": "x" * (LIMIT - overhead + 1)})
    assert Event.objects.count() == 1


def test_payload_size_counts_utf8_bytes_not_characters(workspace):
    # "€" is 3 bytes in UTF-8 (and 6 as a JSON \u escape, which must not be what counts).
    overhead = len('{"text":""}')
    fits = {"text": "\u20ac" * ((LIMIT - overhead) // 3)}
    too_big = {"text": "\u20ac" * ((LIMIT - overhead) // 3 + 1)}

    event = emit("query.query_failed", workspace=workspace, payload=fits)
    with pytest.raises(PayloadTooLarge, match=f"{overhead + 3 * len(too_big['text'])} bytes"):
        emit("query.query_failed", workspace=workspace, payload=too_big)
    assert list(Event.objects.values_list("pk", flat=True)) == [event.pk]


# --- what a successful emit stores --------------------------------------------------------

def test_emit_stores_a_pending_event_with_the_default_priority(workspace):
    before = timezone.now()
    event = emit("data_source.connection_lost", workspace=workspace.public_id,
                 payload={"datasource_name": "Production Snowflake"})
    after = timezone.now()

    stored = Event.objects.get(pk=event.pk)
    assert stored.event_type.key == "data_source.connection_lost"
    assert stored.workspace == workspace
    assert stored.priority == "critical"
    assert stored.status == Event.Status.PENDING
    assert stored.payload == {"datasource_name": "Production Snowflake"}
    assert stored.recipient_ids is None
    assert stored.dedupe_key is None
    assert stored.routed_at is None
    assert before <= stored.occurred_at <= after


def test_emit_accepts_workspace_and_event_type_objects_and_no_payload(workspace):
    event_type = EventType.objects.get(key="system.storage_quota_warning")

    event = emit(event_type, workspace=workspace)

    stored = Event.objects.get(pk=event.pk)
    assert (stored.event_type, stored.workspace, stored.payload) == (event_type, workspace, {})
    assert stored.priority == "high"


def test_emit_without_workspace(db):
    event = emit("system.platform_update_available", payload={"version": "2.4"})

    stored = Event.objects.get(pk=event.pk)
    assert stored.workspace is None
    assert stored.priority == "low"


def test_priority_override_is_the_stored_priority(workspace):
    EventType.objects.filter(key="query.query_failed").update(priority_override="info")
    EventType.objects.filter(key="user.user_invited").update(priority_override="critical")

    failed = emit("query.query_failed", workspace=workspace)
    invited = emit("user.user_invited", workspace=workspace)

    assert Event.objects.get(pk=failed.pk).priority == "info"
    assert Event.objects.get(pk=invited.pk).priority == "critical"


def test_priority_is_fixed_when_emitted(workspace):
    event = emit("query.query_failed", workspace=workspace)
    EventType.objects.filter(key="query.query_failed").update(priority_override="low")

    assert Event.objects.get(pk=event.pk).priority == "high"


def test_given_occurred_at_is_kept(workspace):
    when = datetime(2024, 3, 9, 8, 30, 15, tzinfo=UTC)

    event = emit("query.query_timeout", workspace=workspace, occurred_at=when)

    assert Event.objects.get(pk=event.pk).occurred_at == when


def test_recipients_are_stored_as_sorted_distinct_user_ids(db):
    workspace = workspace_of(3)
    first, second, third = workspace.people

    event = emit("query.query_failed", workspace=workspace,
                 recipients=[third, first.pk, third.pk])

    assert Event.objects.get(pk=event.pk).recipient_ids == sorted([first.pk, third.pk])
    assert second.pk not in Event.objects.get(pk=event.pk).recipient_ids


def test_payload_is_stored_as_its_json_form(workspace):
    event = emit("query.query_failed", workspace=workspace,
                 payload={"rows": (1, 2), "nested": {"ok": True, "none": None}})

    assert Event.objects.get(pk=event.pk).payload == {
        "rows": [1, 2], "nested": {"ok": True, "none": None}
    }


# --- disabled event types: logged, not delivered ------------------------------------------

def test_disabled_event_type_is_logged_as_suppressed_and_never_routed(
    workspace, django_capture_on_commit_callbacks
):
    EventType.objects.filter(key="query.query_failed").update(enabled=False)

    with django_capture_on_commit_callbacks() as callbacks:
        event = emit("query.query_failed", workspace=workspace, payload={"query_name": "q1"})
    result = event_route(event_id=event.pk)

    stored = Event.objects.get(pk=event.pk)
    assert stored.status == Event.Status.SUPPRESSED
    assert stored.priority == "high"
    assert callbacks == []
    assert result.skipped
    assert stored.routed_at is None
    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()


def test_enabled_event_type_of_the_same_kind_is_routed(workspace):
    """The counterpart of the test above: routing the same kind of event does notify."""
    event = emit("query.query_failed", workspace=workspace, payload={"query_name": "q1"})

    result = event_route(event_id=event.pk)

    assert not result.skipped
    assert Event.objects.get(pk=event.pk).status == Event.Status.ROUTED
    assert set(Notification.objects.values_list("user_id", flat=True)) == {
        u.pk for u in workspace.people
    }


# --- dedupe_key ---------------------------------------------------------------------------

def test_same_dedupe_key_returns_the_first_event(workspace, django_capture_on_commit_callbacks):
    first = emit("data_source.connection_lost", workspace=workspace, dedupe_key="ds-42-down",
                 payload={"datasource_name": "first"})

    with django_capture_on_commit_callbacks() as callbacks:
        again = emit("data_source.connection_lost", workspace=workspace,
                     dedupe_key="ds-42-down", payload={"datasource_name": "second"})

    assert again.pk == first.pk
    assert again.payload == {"datasource_name": "first"}
    assert Event.objects.count() == 1
    assert callbacks == []  # nothing enqueued again: nobody is notified twice


def test_dedupe_key_is_scoped_to_workspace_and_event_type(db):
    one, two = workspace_of(0, "One"), workspace_of(0, "Two")

    a = emit("data_source.connection_lost", workspace=one, dedupe_key="k")
    b = emit("data_source.connection_lost", workspace=two, dedupe_key="k")
    c = emit("data_source.schema_change", workspace=one, dedupe_key="k")
    d = emit("data_source.connection_lost", dedupe_key="k")

    assert len({a.pk, b.pk, c.pk, d.pk}) == 4
    assert emit("data_source.connection_lost", workspace=two, dedupe_key="k").pk == b.pk
    assert emit("data_source.schema_change", workspace=one, dedupe_key="k").pk == c.pk
    assert Event.objects.count() == 4


def test_dedupe_without_workspace(db, django_capture_on_commit_callbacks):
    first = emit("system.scheduled_maintenance", dedupe_key="window-2024-06")

    with django_capture_on_commit_callbacks() as callbacks:
        again = emit("system.scheduled_maintenance", dedupe_key="window-2024-06")

    assert again.pk == first.pk
    assert Event.objects.filter(event_type__key="system.scheduled_maintenance").count() == 1
    assert callbacks == []


def test_events_without_dedupe_key_are_never_merged(workspace):
    emit("query.query_failed", workspace=workspace)
    emit("query.query_failed", workspace=workspace)
    emit("query.query_failed")
    emit("query.query_failed")

    assert Event.objects.count() == 4


def test_dedupe_key_of_200_characters_is_accepted(workspace):
    key = "k" * 200

    event = emit("query.query_failed", workspace=workspace, dedupe_key=key)

    assert Event.objects.get(pk=event.pk).dedupe_key == key


# --- cost in the caller -------------------------------------------------------------------

def count_emit_queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as queries:
        emit("data_source.connection_lost", payload={"datasource_name": "x"}, **kwargs)
    return len(queries.captured_queries)


def test_emit_query_count_does_not_grow_with_the_workspace(db):
    small, large = workspace_of(1, "Small"), workspace_of(40, "Large")

    assert count_emit_queries(workspace=small) == count_emit_queries(workspace=large)


def test_emit_query_count_does_not_grow_with_the_recipients(db):
    small, large = workspace_of(1, "Small"), workspace_of(40, "Large")
    assert len(large.people) == 40

    assert count_emit_queries(workspace=small, recipients=small.people) == count_emit_queries(
        workspace=large, recipients=large.people
    )


def test_emit_query_count_by_workspace_id_with_dedupe(db):
    small, large = workspace_of(1, "Small"), workspace_of(40, "Large")

    assert count_emit_queries(workspace=small.public_id, dedupe_key="a") == count_emit_queries(
        workspace=large.public_id, dedupe_key="a"
    )


# --- routing is enqueued only after commit ------------------------------------------------

def test_emit_in_a_committed_transaction_enqueues_once_on_commit(
    workspace, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks(execute=False)
    with capture as callbacks, transaction.atomic():
        event = emit("policy.violation_detected", workspace=workspace,
                     payload={"policy_name": "PII"})

    assert len(callbacks) == 1
    assert callbacks[0].keywords == {"event_id": event.pk, "priority": event.priority}
    assert Event.objects.get(pk=event.pk).status == Event.Status.PENDING


def test_emit_in_a_rolled_back_transaction_enqueues_nothing_and_keeps_nothing(
    workspace, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks(execute=False)
    with capture as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        emit("policy.violation_detected", workspace=workspace, payload={"policy_name": "PII"})
        raise RuntimeError("the caller's work failed")

    assert callbacks == []
    assert not Event.objects.exists()


def test_each_committed_emit_enqueues_its_own_event(workspace, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks(execute=False)
    with capture as callbacks, transaction.atomic():
        first = emit("query.query_failed", workspace=workspace)
        second = emit("query.query_timeout", workspace=workspace)

    assert [c.keywords["event_id"] for c in callbacks] == [first.pk, second.pk]


def test_suppressed_emit_enqueues_nothing_even_when_committed(
    workspace, django_capture_on_commit_callbacks
):
    EventType.objects.filter(key="policy.violation_detected").update(enabled=False)

    capture = django_capture_on_commit_callbacks(execute=False)
    with capture as callbacks, transaction.atomic():
        event = emit("policy.violation_detected", workspace=workspace)

    assert callbacks == []
    assert Event.objects.get(pk=event.pk).status == Event.Status.SUPPRESSED


def test_occurred_at_in_another_timezone_is_the_same_instant(workspace):
    when = datetime(2024, 3, 9, 10, 0, tzinfo=UTC) + timedelta(hours=2)
    local = when.astimezone(timezone.get_fixed_timezone(120))

    event = emit("query.query_timeout", workspace=workspace, occurred_at=local)

    assert Event.objects.get(pk=event.pk).occurred_at == when


# --- the outbox sweep ---------------------------------------------------------------------

def test_sweep_enqueues_only_due_events_and_pushes_their_next_sweep_ahead(workspace, settings):
    from datetime import timedelta

    from events.services.outbox import outbox_sweep

    fresh = emit("query.query_failed", workspace=workspace)
    failed = emit("query.query_failed", workspace=workspace)
    stale = emit("query.query_failed", workspace=workspace)
    routed = emit("query.query_failed", workspace=workspace)
    now = timezone.now()
    Event.objects.filter(pk=failed.pk).update(next_sweep_at=now)  # its publish failed
    Event.objects.filter(pk=stale.pk).update(next_sweep_at=now - timedelta(minutes=1))
    Event.objects.filter(pk=routed.pk).update(status="routed", next_sweep_at=None)

    urgent = timedelta(seconds=settings.DATAFI_OUTBOX_URGENT_STALE_SECONDS)  # query_failed: high
    assert fresh.next_sweep_at > now + urgent - timedelta(seconds=5)
    assert outbox_sweep() == 2
    assert outbox_sweep() == 0  # enqueued ones wait a whole stale period before another try
    swept = Event.objects.filter(pk__in=[failed.pk, stale.pk])
    assert all(e.next_sweep_at > now + urgent - timedelta(seconds=5) for e in swept)


def test_critical_and_high_events_are_swept_again_sooner_than_batched_ones(workspace, settings):
    from datetime import timedelta

    from events.services.outbox import outbox_sweep

    settings.DATAFI_OUTBOX_URGENT_STALE_SECONDS = 45
    settings.DATAFI_OUTBOX_STALE_SECONDS = 600
    types = {"critical": "data_source.connection_lost", "high": "query.query_failed",
             "medium": "query.long_running_query"}
    before = timezone.now()
    events = {p: emit(key, workspace=workspace) for p, key in types.items()}
    assert {p: e.priority for p, e in events.items()} == {p: p for p in types}

    def due_after(since):  # seconds from ``since`` to the sweep that enqueues it again
        return {p: (Event.objects.get(pk=e.pk).next_sweep_at - since).total_seconds()
                for p, e in events.items()}

    windows = due_after(before)
    assert 45 <= windows["critical"] < 60 and 45 <= windows["high"] < 60, windows
    assert 600 <= windows["medium"] < 615, windows

    # Their messages were lost: 46 s on, only the critical and high events are due.
    Event.objects.update(next_sweep_at=models.F("next_sweep_at") - timedelta(seconds=46))
    swept_at = timezone.now()
    assert outbox_sweep() == 2
    assert outbox_sweep() == 0
    windows = due_after(swept_at)
    assert 45 <= windows["critical"] < 60 and 45 <= windows["high"] < 60, windows
    assert windows["medium"] < 600 - 30, windows  # not swept: still its first window


def test_concurrent_emits_with_one_dedupe_key_store_one_event(postgres, live_db):
    from tests.support import run_concurrently

    workspace = workspace_of(2)
    results = run_concurrently(
        lambda: emit("data_source.connection_lost", workspace=workspace,
                     dedupe_key="snowflake-down"),
        times=4,
    )

    assert len({event.pk for event in results}) == 1 and len(results) == 4
    assert Event.objects.filter(dedupe_key="snowflake-down").count() == 1
