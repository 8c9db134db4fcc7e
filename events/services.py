"""Everything in the events app that writes: the catalog, emit(), the outbox sweep."""

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from . import catalog, task_names
from .exceptions import (
    ApplicationError,
    InvalidDedupeKey,
    InvalidOccurredAt,
    InvalidPayload,
    InvalidRecipients,
    PayloadTooLarge,
    UnknownEventType,
    UnknownWorkspace,
)
from .models import CatalogVersion, Category, Event, EventType, Workspace

logger = logging.getLogger(__name__)


# --- catalog ------------------------------------------------------------------------------

@dataclass
class CatalogSyncResult:
    created: list[str]
    updated: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def catalog_sync(*, category_model=Category, event_type_model=EventType) -> CatalogSyncResult:
    """Write the built-in catalog to the database; idempotent.

    Creates missing categories and event types and refreshes their code-owned texts
    (label, description, title template, default priority). Never touches what an admin
    owns: ``enabled`` and ``priority_override``. The models are parameters so the data
    migration can pass its historical models.
    """
    result = CatalogSyncResult(created=[], updated=[])
    with transaction.atomic():
        categories = {c.slug: c for c in category_model.objects.all()}
        for definition in catalog.CATEGORIES:
            wanted = {"name": definition.name, "prefix": definition.prefix,
                      "position": definition.position}
            current = categories.get(definition.slug)
            if current is None:
                categories[definition.slug] = category_model.objects.create(
                    slug=definition.slug, **wanted
                )
                result.created.append(definition.slug)
            elif _assign_changed(current, wanted):
                current.save(update_fields=list(wanted))
                result.updated.append(definition.slug)

        event_types = {t.key: t for t in event_type_model.objects.all()}
        for definition in catalog.EVENT_TYPES:
            wanted = {
                "category_id": categories[definition.category].pk,
                "name": definition.name,
                "label": definition.label,
                "description": definition.description,
                "title_template": definition.title_template,
                "default_priority": definition.priority,
                "builtin": True,
            }
            current = event_types.get(definition.key)
            if current is None:
                event_type_model.objects.create(key=definition.key, **wanted)
                result.created.append(definition.key)
            elif _assign_changed(current, wanted):
                current.save(update_fields=list(wanted))
                result.updated.append(definition.key)
    return result


def _assign_changed(instance, values: dict) -> bool:
    changed = False
    for field, value in values.items():
        if getattr(instance, field) != value:
            setattr(instance, field, value)
            changed = True
    return changed


#: What an admin may change on a custom (not built-in) event type; code owns the built-ins'.
EVENT_TYPE_DEFINITION_FIELDS = ("category", "name", "label", "description", "title_template",
                                "default_priority")


def event_type_create(
    *,
    category: Category,
    name: str,
    label: str,
    title_template: str,
    default_priority: str,
    description: str = "",
    priority_override: str = "",
    enabled: bool = True,
) -> EventType:
    """Add a custom event type; its key is ``<category prefix>.<name>``.

    Raises ``ValidationError`` naming the field for a duplicate name, an unknown priority
    or a title template that does not compile.
    """
    event_type = EventType(
        key=f"{category.prefix}.{name}", category=category, name=name, label=label,
        description=description, title_template=title_template, default_priority=default_priority,
        priority_override=priority_override, enabled=enabled, builtin=False,
    )
    event_type.full_clean()
    event_type.save(force_insert=True)
    return event_type


def event_type_update(
    *,
    event_type: EventType,
    enabled: bool | None = None,
    priority_override: str | None = None,
    **definition: Any,
) -> EventType:
    """Change an event type and save only what changed; the one way event types change.

    ``enabled`` and ``priority_override`` (``""`` clears it) may change on any event type;
    ``definition`` (``EVENT_TYPE_DEFINITION_FIELDS``) only on a custom one. Raises
    ``ApplicationError`` naming the field it refuses, or ``ValidationError`` from the
    model's validation of a changed definition.
    """
    fields = []
    if enabled is not None:
        event_type.enabled = enabled
        fields.append("enabled")
    if priority_override is not None:
        if priority_override and priority_override not in catalog.Priority.VALUES:
            raise ApplicationError(
                f"unknown priority {priority_override!r}; choose from "
                f"{', '.join(catalog.Priority.VALUES)} or '' for none",
                field="priority_override",
            )
        event_type.priority_override = priority_override
        fields.append("priority_override")
    for field, value in definition.items():
        if field not in EVENT_TYPE_DEFINITION_FIELDS:
            raise ApplicationError(f"{field} cannot be changed", field=field)
        if event_type.builtin:
            raise ApplicationError(
                f"{field} of a built-in event type is defined in code", field=field
            )
        setattr(event_type, field, value)
        fields.append(field)
    if definition:
        event_type.full_clean()  # also derives the key from the category and the name
        fields.append("key")
    if fields:
        event_type.save(update_fields=fields)
    return event_type


# --- emit ---------------------------------------------------------------------------------

def event_emit(
    event_type: str | EventType,
    *,
    payload: dict[str, Any] | None = None,
    workspace: str | Workspace | None = None,
    recipients: list | None = None,
    dedupe_key: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Record an event and have it routed once the caller's transaction commits.

    Validates everything before writing and raises a subclass of ``EmitError``
    (a ``ValueError``) naming the problem; nothing is written then. The returned event's
    ``deduplicated`` attribute says whether it is an earlier event found by ``dedupe_key``.
    The Event row joins the
    caller's transaction: on rollback nothing is sent. Routing is enqueued on commit; if the
    broker is down the event stays pending and the outbox sweep routes it later. The number
    of queries does not depend on the size of the audience. With ``dedupe_key``, a repeat of
    (event type, workspace, dedupe_key) returns the first event and notifies nobody again.
    """
    token, workspace_pk = _catalog_lookup(event_type, workspace)
    event_type = _resolve_event_type(event_type, token=token)
    payload = _validate_payload(payload)
    workspace = _resolve_workspace(workspace, pk=workspace_pk)
    recipient_ids = _resolve_recipients(recipients, workspace)
    dedupe_key = _validate_dedupe_key(dedupe_key)
    occurred_at = _validate_occurred_at(occurred_at)

    if dedupe_key is not None:
        existing = _event_by_dedupe_key(event_type, workspace, dedupe_key)
        if existing is not None:
            existing.deduplicated = True
            return existing

    event = Event(
        event_type=event_type,
        workspace=workspace,
        priority=event_type.effective_priority,
        payload=payload,
        recipient_ids=recipient_ids,
        dedupe_key=dedupe_key,
        occurred_at=occurred_at,
        status=Event.Status.PENDING if event_type.enabled else Event.Status.SUPPRESSED,
        next_sweep_at=(
            timezone.now() + timedelta(seconds=settings.DATAFI_OUTBOX_STALE_SECONDS)
            if event_type.enabled else None
        ),
    )
    if dedupe_key is None:
        event.save(force_insert=True)
    else:
        try:
            with transaction.atomic():  # a savepoint: a lost race must not break the caller's
                event.save(force_insert=True)
        except IntegrityError:
            # Lost a race with a concurrent emit of the same dedupe key: theirs is the event.
            existing = _event_by_dedupe_key(event_type, workspace, dedupe_key)
            if existing is None:
                raise  # not a dedupe race after all
            existing.deduplicated = True
            return existing
    event.deduplicated = False

    if event.status == Event.Status.PENDING:
        transaction.on_commit(partial(event_enqueue, event_id=event.pk, priority=event.priority))
    else:
        logger.info("event %s logged, not delivered: %s is disabled", event.pk, event_type.key)
    return event


# Event types by key, read under one catalog version token; replaced as a whole, so a
# thread sees either the old dictionary or the new one.
_event_types: tuple[str | None, dict[str, EventType]] = (None, {})
_NOT_LOOKED_UP = object()


def _catalog_lookup(event_type, workspace) -> tuple[str | None, Any]:
    """The catalog version token and the pk of the workspace named by a public id; one query.

    The token is read in the query that looks up the workspace (which emit makes anyway),
    so checking the event type cache costs nothing more. Either half is skipped when not
    needed; without a string for either, no query at all. The pk is ``None`` for an
    unknown workspace, ``_NOT_LOOKED_UP`` when ``workspace`` is not a usable public id.
    """
    want_token = isinstance(event_type, str) and event_type
    want_workspace = isinstance(workspace, str) and workspace
    if not (want_token or want_workspace):
        return None, _NOT_LOOKED_UP
    columns, params = [], []
    if want_token:
        columns.append(_CATALOG_TOKEN_SQL)
    if want_workspace:
        columns.append(_WORKSPACE_PK_SQL)
        params.append(workspace)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", params)
        row = list(cursor.fetchone())
    token = row.pop(0) if want_token else None
    return token, (row.pop(0) if want_workspace else _NOT_LOOKED_UP)


_CATALOG_TOKEN_SQL = (
    f"(SELECT token FROM {CatalogVersion._meta.db_table} WHERE id = {CatalogVersion.SINGLETON})"
)
_WORKSPACE_PK_SQL = f"(SELECT id FROM {Workspace._meta.db_table} WHERE public_id = %s)"


def _resolve_event_type(event_type, *, token: str | None = None) -> EventType:
    """The event type, from this process's cache when ``token`` is the one it was read under.

    Any change to any event type changes the token (a database trigger), so a change made
    anywhere is seen by the next emit in every process. No token, no caching.
    """
    global _event_types
    if isinstance(event_type, EventType):
        return event_type
    if not isinstance(event_type, str) or not event_type:
        raise UnknownEventType(f"event_type must be an event type key, got {event_type!r}")
    cached_token, cached = _event_types
    if token is not None and token == cached_token and event_type in cached:
        return cached[event_type]
    try:
        found = EventType.objects.get(key=event_type)
    except EventType.DoesNotExist:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None
    if token is not None:  # read after the token: at worst cached under an older token
        _event_types = (token, {**cached, event_type: found} if token == cached_token
                        else {event_type: found})
    return found


def _validate_payload(payload) -> dict:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload must be a JSON object, got {type(payload).__name__}")
    try:
        encoded = json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload is not JSON-serializable: {exc}") from None
    size = len(encoded.encode())
    limit = settings.DATAFI_MAX_PAYLOAD_BYTES
    if size > limit:
        raise PayloadTooLarge(f"payload is {size} bytes as JSON; the limit is {limit} bytes")
    return json.loads(encoded)


def _resolve_workspace(workspace, *, pk=_NOT_LOOKED_UP) -> Workspace | None:
    """The workspace; for a public id, ``pk`` is what ``_catalog_lookup`` found for it.

    A workspace found by its public id comes back with only its id and public id loaded
    (the rest loads on access): emit needs no more.
    """
    if workspace is None or isinstance(workspace, Workspace):
        if isinstance(workspace, Workspace) and workspace.pk is None:
            raise UnknownWorkspace("workspace is not saved")
        return workspace
    if not isinstance(workspace, str) or not workspace or pk is _NOT_LOOKED_UP:
        raise UnknownWorkspace(
            f"workspace must be a workspace id like 'ws_abc123', got {workspace!r}"
        )
    if pk is None:
        raise UnknownWorkspace(f"unknown workspace {workspace!r}")
    return Workspace.from_db(connection.alias, ["id", "public_id"], [pk, workspace])


def _resolve_recipients(recipients, workspace: Workspace | None) -> list[int] | None:
    if recipients is None:
        return None
    if isinstance(recipients, (str, bytes)) or not hasattr(recipients, "__iter__"):
        raise InvalidRecipients("recipients must be a list of users or user ids")
    ids = []
    for recipient in recipients:
        pk = getattr(recipient, "pk", recipient)
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise InvalidRecipients(f"recipients must be users or user ids, got {recipient!r}")
        ids.append(pk)
    ids = sorted(set(ids))
    if not ids:
        raise InvalidRecipients("recipients is empty; pass None for the default audience")
    users = get_user_model().objects.filter(pk__in=ids, is_active=True)
    if workspace is not None:
        users = users.filter(memberships__workspace=workspace)
    found = set(users.values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in found]
    if missing:
        where = f"members of workspace {workspace.public_id}" if workspace else "active users"
        raise InvalidRecipients(f"recipients {missing} are not {where}")
    return ids


def _validate_dedupe_key(dedupe_key) -> str | None:
    if dedupe_key is None:
        return None
    if not isinstance(dedupe_key, str) or not dedupe_key.strip():
        raise InvalidDedupeKey("dedupe_key must be a non-empty string")
    if len(dedupe_key) > 200:
        raise InvalidDedupeKey(f"dedupe_key is {len(dedupe_key)} characters; the limit is 200")
    return dedupe_key


def _validate_occurred_at(occurred_at) -> datetime:
    if occurred_at is None:
        return timezone.now()
    if not isinstance(occurred_at, datetime):
        raise InvalidOccurredAt(f"occurred_at must be a datetime, got {occurred_at!r}")
    if timezone.is_naive(occurred_at):
        raise InvalidOccurredAt("occurred_at must be timezone-aware")
    return occurred_at


def _event_by_dedupe_key(event_type, workspace, dedupe_key) -> Event | None:
    return Event.objects.filter(
        event_type=event_type, workspace=workspace, dedupe_key=dedupe_key
    ).first()


# --- outbox -------------------------------------------------------------------------------

_broker_down_until = 0.0  # monotonic time; per process


def event_enqueue(*, event_id, priority: str) -> bool:
    """Publish the routing task for one event; never raises. Runs after commit.

    Critical and high events go to the priority lane (``EVENT_ROUTE_URGENT``, routed to the
    ``urgent`` queue in settings), so they never wait behind batched work.

    A broker that is down or hangs fails fast (connection and socket timeouts in settings,
    no publish retries). The event is then marked due for the next outbox sweep, and this
    process leaves the broker alone for ``DATAFI_BROKER_BACKOFF_SECONDS``, so a caller that
    emits many events during an outage waits for one timeout, not one per event.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        _mark_due_for_sweep(event_id)
        return False
    try:
        name = (task_names.EVENT_ROUTE_URGENT if priority in catalog.Priority.IMMEDIATE
                else task_names.EVENT_ROUTE)
        current_app.send_task(name, kwargs={"event_id": str(event_id)}, retry=False)
    except Exception as exc:  # the broker's failure must not become the caller's
        _broker_down_until = time.monotonic() + settings.DATAFI_BROKER_BACKOFF_SECONDS
        logger.warning("routing of event %s not enqueued, the sweep will retry: %r", event_id, exc)
        _mark_due_for_sweep(event_id)
        return False
    return True


def _mark_due_for_sweep(event_id) -> None:
    try:
        Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
            next_sweep_at=timezone.now()
        )
    except DatabaseError:  # the row keeps its later sweep time; it is not lost
        logger.exception("event %s: could not mark it due for the outbox sweep", event_id)


def outbox_sweep(*, batch_size: int = 500) -> int:
    """Enqueue routing for every pending event that is due; returns how many were enqueued.

    Due: its publish failed, or it is still unrouted ``DATAFI_OUTBOX_STALE_SECONDS`` after
    emit or after its last enqueue (a lost message, or a process that died before
    publishing). Each enqueue pushes the event's next sweep that far ahead, so a backlog in
    the queue is not flooded with copies. Stops at the first failed publish: the broker is
    still down and the next sweep tries again. Safe to run at any time: routing claims the
    event, so one enqueued twice is routed once.
    """
    stale = timedelta(seconds=settings.DATAFI_OUTBOX_STALE_SECONDS)
    enqueued = 0
    while True:
        now = timezone.now()
        due = list(
            Event.objects.filter(status=Event.Status.PENDING, next_sweep_at__lte=now)
            .order_by("next_sweep_at")
            .values_list("pk", "priority")[:batch_size]
        )
        sent = []
        for event_id, priority in due:
            if not event_enqueue(event_id=event_id, priority=priority):
                break
            sent.append(event_id)
        Event.objects.filter(pk__in=sent, status=Event.Status.PENDING).update(
            next_sweep_at=now + stale
        )
        enqueued += len(sent)
        if len(sent) < len(due) or len(due) < batch_size:
            break
    if enqueued:
        logger.info("outbox sweep: %d pending events enqueued", enqueued)
    return enqueued
