"""Everything in the events app that writes: the catalog, workspaces, emit(), the outbox."""

import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from . import catalog, task_names
from .exceptions import (
    ApplicationError,
    EmitNotAllowed,
    InvalidDedupeKey,
    InvalidOccurredAt,
    InvalidPayload,
    InvalidRecipients,
    PayloadTooLarge,
    UnknownEventType,
    UnknownWorkspace,
    WorkspaceError,
)
from .models import CatalogVersion, Category, Event, EventType, Membership, Workspace

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


# --- workspaces ---------------------------------------------------------------------------

WORKSPACE_ID = re.compile(r"ws_[a-z0-9_]{1,37}")


def workspace_create(
    *, name: str, workspace_id: str | None = None, members: Iterable[tuple[str, str]] = ()
) -> Workspace:
    """Create a workspace with its first members, ``(username, role)`` pairs; all or nothing.

    ``workspace_id`` is the public id (``ws_`` then lower-case letters, digits or ``_``);
    one is generated when it is omitted. Raises ``WorkspaceError`` naming the field.
    """
    name = _validate_workspace_name(name)
    with transaction.atomic():
        if workspace_id is None:
            workspace = Workspace.objects.create(name=name)
        else:
            _validate_workspace_id(workspace_id)
            if Workspace.objects.filter(public_id=workspace_id).exists():
                raise WorkspaceError(f"workspace {workspace_id!r} exists already",
                                     field="workspace_id")
            try:
                with transaction.atomic():
                    workspace = Workspace.objects.create(name=name, public_id=workspace_id)
            except IntegrityError:  # created concurrently
                raise WorkspaceError(f"workspace {workspace_id!r} exists already",
                                     field="workspace_id") from None
        for username, role in members:
            membership_add(workspace=workspace, username=username, role=role)
    return workspace


def workspace_update(*, workspace: Workspace, name: str) -> Workspace:
    """Rename a workspace. Its public id never changes: other systems hold it."""
    workspace.name = _validate_workspace_name(name)
    workspace.save(update_fields=["name"])
    return workspace


def workspace_delete(*, workspace: Workspace) -> None:
    """Delete a workspace with its memberships, events and their notifications."""
    workspace.delete()


def membership_add(*, workspace: Workspace | str, username: str,
                   role: str = Membership.Role.MEMBER) -> Membership:
    """Make an existing user a member of ``workspace`` with ``role``.

    Raises ``WorkspaceError`` for an unknown workspace, user or role, or a user who is a
    member already (change a role in the admin, or remove and add again).
    """
    workspace = _workspace_get(workspace)
    if role not in Membership.Role.values:
        raise WorkspaceError(
            f"unknown role {role!r}; one of {', '.join(Membership.Role.values)}", field="role"
        )
    try:
        user = get_user_model().objects.get_by_natural_key(username)
    except get_user_model().DoesNotExist:
        raise WorkspaceError(f"unknown user {username!r}", field="username") from None
    try:
        with transaction.atomic():
            return Membership.objects.create(workspace=workspace, user=user, role=role)
    except IntegrityError:
        raise WorkspaceError(
            f"{username!r} is a member of {workspace.public_id} already", field="username"
        ) from None


def membership_remove(*, workspace: Workspace | str, username: str) -> None:
    """End ``username``'s membership of ``workspace``; raises ``WorkspaceError`` if none."""
    workspace = _workspace_get(workspace)
    deleted, _ = Membership.objects.filter(
        workspace=workspace, user__username=username
    ).delete()
    if not deleted:
        raise WorkspaceError(f"{username!r} is not a member of {workspace.public_id}",
                             field="username")


def _workspace_get(workspace: Workspace | str) -> Workspace:
    if isinstance(workspace, Workspace):
        return workspace
    try:
        return Workspace.objects.get(public_id=workspace)
    except Workspace.DoesNotExist:
        raise WorkspaceError(f"unknown workspace {workspace!r}", field="workspace_id") from None


def _validate_workspace_id(workspace_id) -> None:
    if not isinstance(workspace_id, str) or not WORKSPACE_ID.fullmatch(workspace_id):
        raise WorkspaceError(
            f"{workspace_id!r} is not a workspace id: 'ws_' then 1 to 37 lower-case letters, "
            "digits or '_', e.g. 'ws_analytics'", field="workspace_id"
        )


def _validate_workspace_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise WorkspaceError("a workspace needs a name", field="name")
    name = name.strip()
    field = Workspace._meta.get_field("name")
    if len(name) > field.max_length:
        raise WorkspaceError(f"the name is {len(name)} characters; the limit is "
                             f"{field.max_length}", field="name")
    try:
        field.run_validators(name)  # one line, as the admin checks it
    except ValidationError as exc:
        raise WorkspaceError(exc.messages[0], field="name") from None
    return name


# --- emit ---------------------------------------------------------------------------------

def event_emit(
    event_type: str | EventType,
    *,
    payload: dict[str, Any] | None = None,
    workspace: str | Workspace | None = None,
    recipients: list | None = None,
    dedupe_key: str | None = None,
    occurred_at: datetime | None = None,
    emitted_by=None,
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

    ``emitted_by`` is the user an API or other outside caller acts for; in-process callers
    leave it None and may emit anywhere. A user without staff status or the
    ``events.emit_any_workspace`` permission may emit only to a workspace they belong to
    (any other is refused exactly like an unknown one, so its existence is not revealed),
    and so only to recipients who share it; never to the staff audience (no workspace).
    """
    restricted = emitted_by is not None and not _may_emit_anywhere(emitted_by)
    member = emitted_by if restricted else None
    token, workspace_pk = _catalog_lookup(event_type, workspace, member=member)
    event_type = _resolve_event_type(event_type, token=token)
    payload = _validate_payload(payload)
    if restricted and workspace is None:
        raise EmitNotAllowed(
            "workspace_id is required: only staff and holders of the "
            "events.emit_any_workspace permission may emit events without a workspace"
        )
    workspace = _resolve_workspace(workspace, pk=workspace_pk, member=member)
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
            timezone.now() + outbox_stale_window(event_type.effective_priority)
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

    if event.status != Event.Status.PENDING:
        logger.info("event %s logged, not delivered: %s is disabled", event.pk, event_type.key)
    elif event.priority in catalog.Priority.IMMEDIATE:  # one message each: the latency lane
        transaction.on_commit(partial(event_enqueue, event_id=event.pk, priority=event.priority))
    else:  # routed in batches: one request per transaction
        _routing_request_on_commit(event.pk)
    return event


# Event types by key, read under one catalog version token; replaced as a whole, so a
# thread sees either the old dictionary or the new one.
_event_types: tuple[str | None, dict[str, EventType]] = (None, {})
_NOT_LOOKED_UP = object()


def _catalog_lookup(event_type, workspace, *, member=None) -> tuple[str | None, Any]:
    """The catalog version token and the pk of the workspace named by a public id; one query.

    The token is read in the query that looks up the workspace (which emit makes anyway),
    so checking the event type cache costs nothing more. With ``member``, only a workspace
    that user belongs to is found. Either half is skipped when not needed; without a
    usable string for either, no query at all. The pk is ``None`` for an unknown
    workspace, ``_NOT_LOOKED_UP`` when ``workspace`` is not a usable public id.
    """
    want_token = isinstance(event_type, str) and event_type and not _text_problem(event_type)
    want_workspace = (isinstance(workspace, str) and workspace
                      and not _text_problem(workspace))
    if not (want_token or want_workspace):
        return None, _NOT_LOOKED_UP
    columns, params = [], []
    if want_token:
        columns.append(_CATALOG_TOKEN_SQL)
    if want_workspace:
        columns.append(_WORKSPACE_PK_SQL if member is None else _MEMBER_WORKSPACE_PK_SQL)
        params += [workspace] if member is None else [workspace, member.pk]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", params)
        row = list(cursor.fetchone())
    token = row.pop(0) if want_token else None
    return token, (row.pop(0) if want_workspace else _NOT_LOOKED_UP)


_CATALOG_TOKEN_SQL = (
    f"(SELECT token FROM {CatalogVersion._meta.db_table} WHERE id = {CatalogVersion.SINGLETON})"
)
_WORKSPACE_PK_SQL = f"(SELECT id FROM {Workspace._meta.db_table} WHERE public_id = %s)"
_MEMBER_WORKSPACE_PK_SQL = (
    f"(SELECT w.id FROM {Workspace._meta.db_table} w WHERE w.public_id = %s AND EXISTS "
    f"(SELECT 1 FROM {Membership._meta.db_table} m WHERE m.workspace_id = w.id "
    f"AND m.user_id = %s))"
)


def _resolve_event_type(event_type, *, token: str | None = None) -> EventType:
    """The event type, from this process's cache when ``token`` is the one it was read under.

    Any change to any event type changes the token (a database trigger), so a change made
    anywhere is seen by the next emit in every process. No token, no caching.
    """
    global _event_types
    if isinstance(event_type, EventType):
        return event_type
    if not isinstance(event_type, str) or not event_type or _text_problem(event_type):
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
    """The payload as it will be stored, or ``InvalidPayload`` naming what is wrong.

    Walks the payload iteratively (never recursion, whatever the depth) before encoding it:
    at most ``DATAFI_MAX_PAYLOAD_DEPTH`` levels of objects and arrays, strings and keys that
    PostgreSQL can store (no NUL character, no lone surrogate), integers of at most
    ``MAX_INTEGER_DIGITS`` digits; then at most ``DATAFI_MAX_PAYLOAD_BYTES`` as JSON.
    """
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload must be a JSON object, got {type(payload).__name__}")
    max_depth = settings.DATAFI_MAX_PAYLOAD_DEPTH
    stack = [(payload, "payload", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict):
            if depth > max_depth:
                raise InvalidPayload(f"payload is nested deeper than {max_depth} levels "
                                     f"(at {_short(path)})")
            for key, item in value.items():
                item_path = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"
                if isinstance(key, str):
                    _check_payload_text(key, f"a key in {_short(path)}")
                stack.append((item, item_path, depth + 1))
        elif isinstance(value, (list, tuple)):
            if depth > max_depth:
                raise InvalidPayload(f"payload is nested deeper than {max_depth} levels "
                                     f"(at {_short(path)})")
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_payload_text(value, _short(path))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT_BOUND:
            raise InvalidPayload(f"{_short(path)}: integers may have at most "
                                 f"{MAX_INTEGER_DIGITS} digits")
    try:
        encoded = json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload is not JSON-serializable: {exc}") from None
    size = len(encoded.encode())
    limit = settings.DATAFI_MAX_PAYLOAD_BYTES
    if size > limit:
        raise PayloadTooLarge(f"payload is {size} bytes as JSON; the limit is {limit} bytes")
    return json.loads(encoded)


MAX_INTEGER_DIGITS = 4000  # below Python's int-to-str limit (4300); JSON readers need less
_INT_BOUND = 10**MAX_INTEGER_DIGITS


def _check_payload_text(text: str, where: str) -> None:
    problem = _text_problem(text)
    if problem:
        raise InvalidPayload(f"{where}: {problem}")


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text (PostgreSQL refuses NUL; UTF-8 lone surrogates)."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def _short(path: str, limit: int = 80) -> str:
    return path if len(path) <= limit else path[: limit - 1] + "…"


def _may_emit_anywhere(user) -> bool:
    return user.is_staff or user.has_perm("events.emit_any_workspace")


def _resolve_workspace(workspace, *, pk=_NOT_LOOKED_UP, member=None) -> Workspace | None:
    """The workspace ``workspace`` names; with ``member``, only one that user belongs to.

    For a public id, ``pk`` is what ``_catalog_lookup`` found for it (with the same
    ``member``); the workspace comes back with only its id and public id loaded (the rest
    loads on access): emit needs no more.
    """
    if workspace is None or isinstance(workspace, Workspace):
        if isinstance(workspace, Workspace) and workspace.pk is None:
            raise UnknownWorkspace("workspace is not saved")
        if workspace is not None and member is not None and not workspace.memberships.filter(
            user=member
        ).exists():
            raise UnknownWorkspace(f"unknown workspace {workspace.public_id!r}")
        return workspace
    if (not isinstance(workspace, str) or not workspace or _text_problem(workspace)
            or pk is _NOT_LOOKED_UP):
        raise UnknownWorkspace(
            f"workspace must be a workspace id like 'ws_abc123', got {workspace!r}"
        )
    if pk is None:  # one not theirs is refused exactly like one that does not exist
        raise UnknownWorkspace(f"unknown workspace {workspace!r}")
    return Workspace.from_db(connection.alias, ["id", "public_id"], [pk, workspace])


#: The most ``recipients`` one event may name (a larger audience is a workspace's members).
MAX_RECIPIENTS = 1000
#: An error about recipients quotes at most this many of them, then counts the rest.
RECIPIENTS_QUOTED = 5


def _resolve_recipients(recipients, workspace: Workspace | None) -> list[int] | None:
    if recipients is None:
        return None
    if isinstance(recipients, (str, bytes)) or not hasattr(recipients, "__iter__"):
        raise InvalidRecipients("recipients must be a list of users or user ids")
    ids = []
    for recipient in recipients:
        if len(ids) == MAX_RECIPIENTS:
            raise InvalidRecipients(
                f"recipients lists more than {MAX_RECIPIENTS} users; at most {MAX_RECIPIENTS} "
                "may be named (leave it out to notify the whole workspace)")
        pk = getattr(recipient, "pk", recipient)
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise InvalidRecipients(
                f"recipients must be users or user ids, got {_short(repr(recipient))}")
        ids.append(pk)
    ids = sorted(set(ids))
    if not ids:
        raise InvalidRecipients("recipients is empty; pass None for the default audience")
    user_model = get_user_model()
    low, high = connection.ops.integer_field_range(user_model._meta.pk.get_internal_type())
    users = user_model.objects.filter(  # an id no column can hold is no user (not a 500)
        pk__in=[pk for pk in ids if low <= pk <= high], is_active=True)
    if workspace is not None:
        users = users.filter(memberships__workspace=workspace)
    found = set(users.values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in found]
    if missing:
        where = f"members of workspace {workspace.public_id}" if workspace else "active users"
        quoted = missing[:RECIPIENTS_QUOTED]
        more = (f" and {len(missing) - len(quoted)} more ({len(missing)} in all)"
                if len(missing) > len(quoted) else "")
        raise InvalidRecipients(f"recipients {quoted}{more} are not {where}")
    return ids


def _validate_dedupe_key(dedupe_key) -> str | None:
    if dedupe_key is None:
        return None
    if not isinstance(dedupe_key, str) or not dedupe_key.strip():
        raise InvalidDedupeKey("dedupe_key must be a non-empty string")
    problem = _text_problem(dedupe_key)
    if problem:
        raise InvalidDedupeKey(f"dedupe_key {problem}")
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


def event_mark_failed(*, event_id, error: str) -> bool:
    """Give up on routing a pending event: status ``failed`` with ``error``; idempotent.

    For a routing task that failed for an unexpected reason after its bounded retries. The
    outbox sweep only re-enqueues pending events, so a failed one is not retried forever.
    Returns whether the event was marked (False: unknown, or no longer pending).
    """
    marked = Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
        status=Event.Status.FAILED, last_error=error[:2000], next_sweep_at=None
    )
    if marked:
        logger.error("event %s: routing failed for good: %s", event_id, error[:500])
    return bool(marked)


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


def _mark_due_for_sweep(*event_ids) -> None:
    try:
        Event.objects.filter(pk__in=event_ids, status=Event.Status.PENDING).update(
            next_sweep_at=timezone.now()
        )
    except DatabaseError:  # the rows keep their later sweep time; they are not lost
        logger.exception("events %s: could not mark them due for the outbox sweep", event_ids)


#: The cache key of "routing of the pending batched events is requested" (see below).
ROUTING_REQUESTED_KEY = "events:routing-requested"


def routing_request(*, event_ids=()) -> bool:
    """Have a worker route every pending medium, low and info event; never raises.

    Publishes one ``EVENTS_ROUTE_PENDING`` task, unless one is requested already: the
    request is a flag in the shared cache, set atomically (``cache.add``, SET NX on Redis)
    and deleted by the task before it claims anything. A caller that finds the flag set
    needs nothing more: its events committed before it looked, so before the task deleted
    the flag, so the task's claims, which come after the delete, see them (the task's
    docstring, ``notifications.services.events_route_pending``, has the whole argument).

    When the broker refuses, the flag is deleted again and ``event_ids`` (the caller's
    events) are marked due for the next outbox sweep, as ``event_enqueue`` does; the flag
    lives ``DATAFI_ROUTING_REQUEST_SECONDS`` at most, so a request whose message is lost
    holds back new ones no longer than that. Returns whether routing is on its way.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        _mark_due_for_sweep(*event_ids)
        return False
    try:
        requested = cache.add(ROUTING_REQUESTED_KEY, 1,
                              timeout=settings.DATAFI_ROUTING_REQUEST_SECONDS)
    except Exception as exc:  # no cache: publish anyway; a spare task finds nothing to do
        logger.warning("routing request flag not set: %r", exc)
        requested = True
    if not requested:
        return True
    try:
        current_app.send_task(task_names.EVENTS_ROUTE_PENDING, retry=False)
    except Exception as exc:  # the broker's failure must not become the caller's
        _broker_down_until = time.monotonic() + settings.DATAFI_BROKER_BACKOFF_SECONDS
        logger.warning("routing of pending events not requested, the sweep will retry: %r",
                       exc)
        routing_request_clear()
        _mark_due_for_sweep(*event_ids)
        return False
    return True


def routing_request_clear() -> None:
    """Forget the routing request, so that the next emit requests again; never raises.

    The routing task calls it before it claims any event.
    """
    try:
        cache.delete(ROUTING_REQUESTED_KEY)
    except Exception as exc:  # the flag expires by itself
        logger.warning("routing request flag not deleted: %r", exc)


class _RoutingRequest:
    """The routing request of one transaction's batched events, run once it commits."""

    def __init__(self, event_id):
        self.event_ids = [event_id]
        self.done = False

    def __call__(self):
        self.done = True
        routing_request(event_ids=self.event_ids)


def _routing_request_on_commit(event_id) -> None:
    """Request routing of ``event_id`` once the caller commits: one request (one cache
    round trip) per transaction, however many batched events it emits.

    Django replaces ``run_on_commit`` with a new list whenever it runs the callbacks or a
    rollback drops some; a request registered in the current list is still to run, so
    the event joins it. Otherwise (first event, or the list changed) a new one is
    registered: at worst a transaction makes two requests, never none.
    """
    conn = transaction.get_connection()
    current = getattr(conn, "datafi_routing_request", None)
    if current is not None and current[0] is conn.run_on_commit and not current[1].done:
        current[1].event_ids.append(event_id)
        return
    request = _RoutingRequest(event_id)
    conn.datafi_routing_request = (conn.run_on_commit, request)
    transaction.on_commit(request)


def outbox_stale_window(priority: str) -> timedelta:
    """How long an event may stay unrouted after an enqueue before the sweep enqueues it again.

    Critical and high events get ``DATAFI_OUTBOX_URGENT_STALE_SECONDS``: a message lost with
    a killed worker (Redis hides it for the visibility timeout) or with a broker restarted
    empty is enqueued again within that window plus one sweep interval. The batched
    priorities wait ``DATAFI_OUTBOX_STALE_SECONDS``; they wait for a digest anyway.
    """
    if priority in catalog.Priority.IMMEDIATE:
        return timedelta(seconds=settings.DATAFI_OUTBOX_URGENT_STALE_SECONDS)
    return timedelta(seconds=settings.DATAFI_OUTBOX_STALE_SECONDS)


def outbox_sweep(*, batch_size: int = 500) -> int:
    """Enqueue routing for every pending event that is due; returns how many were enqueued.

    Due: its publish failed, or it is still unrouted a stale window (``outbox_stale_window``)
    after emit or after its last enqueue (a lost message, or a process that died before
    publishing). Each enqueue pushes the event's next sweep that far ahead, so a backlog in
    the queue is not flooded with copies. Stops at the first failed publish: the broker is
    still down and the next sweep tries again. Safe to run at any time: routing claims the
    event, so one enqueued twice is routed once. Uses the partial index on ``next_sweep_at``.
    """
    enqueued = 0
    while True:
        now = timezone.now()
        due = list(
            Event.objects.filter(status=Event.Status.PENDING, next_sweep_at__lte=now)
            .order_by("next_sweep_at")
            .values_list("pk", "priority")[:batch_size]
        )
        sent: dict[timedelta, list] = {}  # stale window -> event ids enqueued
        count = 0
        for event_id, priority in due:
            if not event_enqueue(event_id=event_id, priority=priority):
                break
            sent.setdefault(outbox_stale_window(priority), []).append(event_id)
            count += 1
        for window, ids in sent.items():
            Event.objects.filter(pk__in=ids, status=Event.Status.PENDING).update(
                next_sweep_at=now + window
            )
        enqueued += count
        if count < len(due) or len(due) < batch_size:
            break
    if enqueued:
        logger.info("outbox sweep: %d pending events enqueued", enqueued)
    return enqueued
