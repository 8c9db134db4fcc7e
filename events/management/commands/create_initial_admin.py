import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first superuser with a random password, printed once. Does nothing later."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; log in with it (lost the password? "
                              "python manage.py changepassword <username>).")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(options["username"], options["email"], password)
        self.stdout.write(self.style.SUCCESS(
            f"Created superuser {options['username']!r} with password: {password}\n"
            "This password is shown only once."
        ))
