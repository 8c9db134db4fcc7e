"""Secrets at rest: Fernet tokens under the keys of ``settings.FIELD_ENCRYPTION_KEY``.

The setting is a list of Fernet keys: the first encrypts, every one decrypts, so a key is
rotated by putting a new one first, running ``manage.py rotate_encryption_keys``, then
dropping the old one.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any key of ``FIELD_ENCRYPTION_KEY``."""


def encrypt(plaintext: str) -> str:
    """The Fernet token of ``plaintext`` under the first key."""
    return _fernet(_keys()).encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, what: str = "a stored secret") -> str:
    """The plaintext of ``token``; raises DecryptionError naming ``what`` if no key opens it."""
    try:
        return _fernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(_cannot_decrypt(what)) from None


def rotate(token: str, *, what: str = "a stored secret") -> str:
    """``token`` re-encrypted under the first key; raises DecryptionError like decrypt()."""
    try:
        return _fernet(_keys()).rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(_cannot_decrypt(what)) from None


def _cannot_decrypt(what: str) -> str:
    return (f"{what} cannot be decrypted with any key in FIELD_ENCRYPTION_KEY: it was encrypted "
            "with a key that is no longer configured. Put that key back in the list "
            "(after the current one), then run manage.py rotate_encryption_keys.")


def _keys() -> tuple[str, ...]:
    keys = settings.FIELD_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = keys.split(",")
    keys = tuple(key.strip() for key in keys if key.strip())
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY needs at least one Fernet key.")
    return keys


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEY: key {position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')."
            ) from None
    return MultiFernet(fernets)
