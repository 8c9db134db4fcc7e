"""Model fields whose values are encrypted at rest (see ``channels_app.crypto``)."""

from django.core.validators import MaxLengthValidator
from django.db import models

from . import crypto

#: Marks a serialized value (dumpdata) as a Fernet token rather than a plaintext.
TOKEN_PREFIX = "fernet:"


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; the model attribute holds the plaintext.

    "" stays "" (no secret). ``max_length`` limits the plaintext, as on a CharField.
    Reading a row whose token no key opens raises ``crypto.DecryptionError``, never an empty
    value. Serializers (dumpdata) see the token, prefixed with ``fernet:``, so a dump never
    carries the plaintext and loaddata restores it. The column cannot be filtered on: every
    save writes a fresh token.
    """

    description = "Text encrypted with FIELD_ENCRYPTION_KEY"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.max_length is not None:  # of the plaintext, checked like a CharField's
            self.validators.append(MaxLengthValidator(self.max_length))

    def _label(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return crypto.decrypt(value, what=self._label())

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(TOKEN_PREFIX):
            return crypto.decrypt(value.removeprefix(TOKEN_PREFIX), what=self._label())
        return super().to_python(value)

    def get_db_prep_save(self, value, connection):
        value = super().get_db_prep_save(value, connection)
        if not value:
            return value
        return crypto.encrypt(value)

    def value_from_object(self, obj):
        value = super().value_from_object(obj)
        return TOKEN_PREFIX + crypto.encrypt(value) if value else value

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise NotImplementedError(f"{self._label()} is encrypted and cannot be filtered on.")

    def get_transform(self, lookup_name):
        raise NotImplementedError(f"{self._label()} is encrypted and cannot be filtered on.")
