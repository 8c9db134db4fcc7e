"""Model instances from the rows of a hand-written join, built as the ORM builds them.

For the few hot queries the ORM would compile on every call (routing's event lock, the send
path's claim): the SQL is written once, and each row becomes one instance per model, with
every value through the converters the ORM's compiler applies (JSON; on SQLite dates, UUIDs
and booleans), so the instances are the ones a queryset would have returned.
"""

from django.db import connection


class Joined:
    """The columns of ``(model, alias)`` pairs, selected in that order, and the instances
    of one row (None for a model whose primary key is NULL: an outer join found nothing)."""

    def __init__(self, *pairs):
        self.pairs = pairs
        self._slices, start = [], 0
        for model, _ in pairs:
            count = len(model._meta.concrete_fields)
            self._slices.append((model, start, start + count,
                                 [f.attname for f in model._meta.concrete_fields].index(
                                     model._meta.pk.attname)))
            start += count
        self.width = start
        self._converters: dict[str, list] = {}

    def select(self) -> str:
        """The column list: ``alias."column", ...``."""
        return ", ".join(f'{alias}."{f.column}"' for model, alias in self.pairs
                         for f in model._meta.concrete_fields)

    def build(self, row, *, shared: dict | None = None) -> list:
        """One instance per model from the first ``width`` values of ``row``. With
        ``shared`` (a dict the caller keeps across rows), the models after the first are
        built once per primary key: a later row holding the same one gets that instance."""
        converters = self._row_converters()
        instances = []
        for index, (model, start, stop, pk) in enumerate(self._slices):
            key = (model, row[start + pk])
            if key[1] is None:
                instances.append(None)
            elif index and shared is not None and key in shared:
                instances.append(shared[key])
            else:
                values = []
                for value, (column, steps) in zip(row[start:stop], converters[start:stop],
                                                  strict=True):
                    for step in steps:
                        value = step(value, column, connection)
                    values.append(value)
                instances.append(model.from_db(connection.alias, None, values))
                if index and shared is not None:
                    shared[key] = instances[-1]
        return instances

    def _row_converters(self) -> list[tuple]:
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for model, alias in self.pairs:
                for f in model._meta.concrete_fields:
                    column = f.get_col(alias)
                    found.append((column, connection.ops.get_db_converters(column)
                                  + column.get_db_converters(connection)))
            self._converters[connection.vendor] = found
        return found
