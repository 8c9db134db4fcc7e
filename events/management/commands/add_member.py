from django.core.management.base import BaseCommand, CommandError

from events.exceptions import WorkspaceError
from events.models import Membership
from events.services.workspaces import membership_add


class Command(BaseCommand):
    help = "Make an existing user a member of a workspace."

    def add_arguments(self, parser):
        parser.add_argument("workspace_id", help="e.g. ws_demo")
        parser.add_argument("username")
        parser.add_argument("--role", default=Membership.Role.MEMBER,
                            help=f"one of {', '.join(Membership.Role.values)} (default member)")

    def handle(self, *args, **options):
        try:
            membership = membership_add(workspace=options["workspace_id"],
                                        username=options["username"], role=options["role"])
        except WorkspaceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Added {options['username']} to {membership.workspace.public_id} "
            f"as {membership.role}"
        ))
