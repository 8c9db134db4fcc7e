import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from events.exceptions import WorkspaceError
from events.models import Membership
from events.services.workspaces import workspace_create


class Command(BaseCommand):
    help = ("Create the first superuser with a random password, printed once, and optionally "
            "a workspace it owns. Does nothing once a superuser exists.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")
        parser.add_argument("--workspace", metavar="ID",
                            help="Also create this workspace (e.g. ws_demo) owned by the admin")
        parser.add_argument("--workspace-name", default="Demo")

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; log in with it (lost the password? "
                              "python manage.py changepassword <username>).")
            return
        password = secrets.token_urlsafe(12)
        try:
            with transaction.atomic():
                User.objects.create_superuser(options["username"], options["email"], password)
                if options["workspace"]:
                    workspace = workspace_create(
                        name=options["workspace_name"], workspace_id=options["workspace"],
                        members=[(options["username"], Membership.Role.OWNER)],
                    )
        except WorkspaceError as exc:
            raise CommandError(f"--workspace: {exc}; nothing was created") from None
        self.stdout.write(self.style.SUCCESS(
            f"Created superuser {options['username']!r} with password: {password}\n"
            "This password is shown only once."
        ))
        if options["workspace"]:
            self.stdout.write(self.style.SUCCESS(
                f"Created workspace {workspace.public_id} ({workspace.name!r}) owned by "
                f"{options['username']!r}: emit to it with workspace_id "
                f"{workspace.public_id!r}."
            ))
