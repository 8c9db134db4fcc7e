"""Workspaces and their members: the audiences of events."""

import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..exceptions import WorkspaceConflict, WorkspaceError
from ..models import Membership, Workspace

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
                raise WorkspaceConflict(f"workspace {workspace_id!r} exists already",
                                        field="workspace_id")
            try:
                with transaction.atomic():
                    workspace = Workspace.objects.create(name=name, public_id=workspace_id)
            except IntegrityError:  # created concurrently
                raise WorkspaceConflict(f"workspace {workspace_id!r} exists already",
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
        raise WorkspaceConflict(
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
