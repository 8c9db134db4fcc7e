from django.core.management.base import BaseCommand, CommandError

from events.exceptions import WorkspaceError
from events.models import Membership
from events.services.workspaces import workspace_create


def member_spec(value: str) -> tuple[str, str]:
    """``USERNAME`` or ``USERNAME:ROLE`` -> (username, role)."""
    username, _, role = value.partition(":")
    return username, role or Membership.Role.MEMBER


class Command(BaseCommand):
    help = "Create a workspace, optionally with members; prints its id."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The workspace's name, e.g. 'Data team'")
        parser.add_argument("--id", dest="workspace_id",
                            help="Public id like ws_data (generated when omitted)")
        parser.add_argument(
            "--member", action="append", default=[], type=member_spec, metavar="USERNAME[:ROLE]",
            help=f"Add an existing user; role one of {', '.join(Membership.Role.values)} "
                 "(default member). Repeat for several.",
        )

    def handle(self, *args, **options):
        try:
            workspace = workspace_create(name=options["name"],
                                         workspace_id=options["workspace_id"],
                                         members=options["member"])
        except WorkspaceError as exc:
            raise CommandError(str(exc)) from None
        members = ", ".join(f"{m.user.get_username()} ({m.role})"
                            for m in workspace.memberships.select_related("user"))
        self.stdout.write(self.style.SUCCESS(
            f"Created workspace {workspace.public_id} ({workspace.name!r})"
            + (f" with members: {members}" if members else "")
        ))
