"""Stored secrets: re-encrypt them all with the first key (key rotation)."""

from django.apps import apps
from django.db import connection, transaction

from .. import crypto
from ..fields import EncryptedTextField


def encrypted_secrets_rotate() -> dict[str, int]:
    """Re-encrypt every non-empty value of every EncryptedTextField with the first key.

    All or nothing: a value no configured key opens raises DecryptionError and nothing is
    written. Returns the number of values per ``app_label.Model.field``.
    """
    counts = {}
    with transaction.atomic():
        for model, field in _encrypted_fields():
            table, column = (connection.ops.quote_name(model._meta.db_table),
                             connection.ops.quote_name(field.column))
            pk_column = connection.ops.quote_name(model._meta.pk.column)
            label = f"{model._meta.label}.{field.name}"
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk_column}, {column} FROM {table} "
                               f"WHERE {column} IS NOT NULL AND {column} <> ''")
                rows = cursor.fetchall()
                for pk, token in rows:
                    cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s",
                                   [crypto.rotate(token, what=f"{label} of row {pk}"), pk])
            counts[label] = len(rows)
    return counts


def _encrypted_fields():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field
