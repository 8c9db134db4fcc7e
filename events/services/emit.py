"""emit(): validate, record the event in the caller's transaction, have it routed on commit."""

import json
import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import metrics

from .. import catalog
from ..exceptions import (
    EmitNotAllowed,
    InvalidDedupeKey,
    InvalidOccurredAt,
    InvalidPayload,
    InvalidRecipients,
    PayloadTooLarge,
    UnknownEventType,
    UnknownWorkspace,
)
from ..models import CatalogVersion, Event, EventType, Membership, Workspace
from .outbox import event_enqueue, outbox_stale_window, routing_request_on_commit

logger = logging.getLogger(__name__)


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
    # Counted as recorded (a caller's later rollback is rare; on commit it would cost every
    # emit a callback of its own).
    metrics.EVENTS_EMITTED.labels(event_type.key, event.priority).inc()

    if event.status != Event.Status.PENDING:
        logger.info("event %s logged, not delivered: %s is disabled", event.pk, event_type.key)
    elif event.priority in catalog.Priority.IMMEDIATE:  # one message each: the latency lane
        transaction.on_commit(partial(event_enqueue, event_id=event.pk, priority=event.priority))
    else:  # routed in batches: one request per transaction
        routing_request_on_commit(event.pk)
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
