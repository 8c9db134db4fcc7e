"""Raw SQL that a migration runs only on the database it was written for."""

from django.db import migrations


def run_sql_by_vendor(forward: dict[str, list[str]], backward: dict[str, list[str]]
                      ) -> migrations.RunPython:
    """An operation that executes the statements ``forward`` lists for the connection's
    vendor (``backward``'s when unapplied); none on another database."""

    def runner(statements: dict[str, list[str]]):
        def run(apps, schema_editor):
            for statement in statements.get(schema_editor.connection.vendor, ()):
                schema_editor.execute(statement)
        return run

    return migrations.RunPython(runner(forward), runner(backward))
