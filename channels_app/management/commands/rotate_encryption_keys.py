from django.core.management.base import BaseCommand, CommandError

from channels_app.crypto import DecryptionError
from channels_app.services.secrets import encrypted_secrets_rotate


class Command(BaseCommand):
    help = ("Re-encrypt every stored secret (every EncryptedTextField of every model) with the "
            "first key of FIELD_ENCRYPTION_KEY. Run it after putting a new key first; then the "
            "old keys can be dropped.")

    def handle(self, *args, **options):
        try:
            counts = encrypted_secrets_rotate()
        except DecryptionError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(
            f"{sum(counts.values())} secrets re-encrypted with the first key."))
