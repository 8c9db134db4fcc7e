"""Imports point one way: core <- events <- channels_app <- notifications; each concept has
one home; the pipeline asks the channel registry instead of naming channels.

Every import statement counts, including ones inside functions and ``TYPE_CHECKING``
blocks, and so do ``import_module``/``import_string`` calls with a literal module name.
"""

import ast
from pathlib import Path

from tests.support import ROOT

#: App -> the other apps it may import. ``config`` is the project's glue on top of them all:
#: an app reads only its control plane (``CONFIG_READABLE``), as it reads the settings.
ALLOWED = {
    "core": set(),
    "events": {"core"},
    "channels_app": {"events", "core"},
    "notifications": {"events", "channels_app", "core"},
    "web": {"events", "core"},  # pages read and write through the REST API, never the models
    # Operating it (health, metrics, the Overview) reads every layer; none imports it.
    "operations": {"events", "channels_app", "notifications", "core"},
}
CONFIG_READABLE = {"config.control_plane"}
DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def imported_modules(tree: ast.AST, *, package: str):
    """(line, absolute module name, names imported from it) for every import in ``tree``,
    relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                yield (node.lineno, ".".join([*base, *([node.module] if node.module else [])]),
                       names)
            else:
                yield node.lineno, node.module, names
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if (name in DYNAMIC_IMPORTS and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                yield node.lineno, node.args[0].value, ()


def violations(app: str, path: Path, source: str) -> list[str]:
    relative = path.relative_to(ROOT)
    package = ".".join(relative.with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    found = []
    imports = imported_modules(ast.parse(source, filename=str(path)), package=package)
    for line, module, names in sorted(imports):
        if not _allowed(app, module, names):
            found.append(f"{relative}:{line}: {app} imports {module}")
    return found


def _allowed(app: str, module: str, names: tuple[str, ...]) -> bool:
    target = module.split(".")[0]
    if target == "config":
        wanted = {f"{module}.{name}" for name in names} if names else {module}
        return module in CONFIG_READABLE or wanted <= CONFIG_READABLE
    return target not in ALLOWED or target == app or target in ALLOWED[app]


def test_apps_import_only_the_layers_below_them():
    problems = []
    for app in ALLOWED:
        files = sorted((ROOT / app).rglob("*.py"))
        assert files, f"no Python files found under {app}/"
        for path in files:
            problems += violations(app, path, path.read_text())
    assert not problems, "imports against the layers (core <- events <- channels_app <- " \
                         "notifications):\n" + "\n".join(problems)


def test_the_check_sees_hidden_and_relative_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from notifications.models import Delivery\n"
        "def load():\n"
        "    import notifications.services\n"
        "    from ...notifications import selectors\n"
        "    importlib.import_module('channels_app.backends')\n"
        "from events.models import Event\n"
        "from .base import ChannelBackend\n"
    )
    path = ROOT / "channels_app" / "backends" / "sample.py"

    assert violations("channels_app", path, source) == [
        "channels_app/backends/sample.py:3: channels_app imports notifications.models",
        "channels_app/backends/sample.py:5: channels_app imports notifications.services",
        "channels_app/backends/sample.py:6: channels_app imports notifications",
    ]
    assert violations("events", ROOT / "events" / "sample.py", source) == [
        "events/sample.py:3: events imports notifications.models",
        "events/sample.py:5: events imports notifications.services",
        "events/sample.py:6: events imports notifications",
        "events/sample.py:7: events imports channels_app.backends",
    ]


def source_lines(*paths):
    """(relative path, line number, line) of every line of the Python files under ``paths``."""
    for base in paths:
        for path in sorted((ROOT / base).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                yield path.relative_to(ROOT), number, line


def test_only_the_events_app_writes_events():
    """``Event.status`` (and the events table) change through ``events`` services only."""
    writes = [f"{path}:{number}: {line.strip()}"
              for path, number, line in source_lines("channels_app", "notifications", "web")
              if ("Event.objects" in line and (".update(" in line or ".delete(" in line))
              or "events_event" in line]
    assert not writes, "\n".join(writes)


def test_the_pipeline_asks_the_channel_registry_and_never_names_a_channel():
    """Routing, the policies, sending, digests and retention work for any channel: a channel
    is one module (``ChannelBackend``), and these never compare channel names."""
    named = [f"{path}:{number}: {line.strip()}"
             for path, number, line in source_lines(
                 "notifications/routing", "notifications/policies", "notifications/deliveries",
                 "notifications/services", "notifications/retention.py")
             if any(f'"{name}"' in line for name in ("email", "webhook", "in_app"))
             and not line.strip().startswith(("#", '"'))]
    assert not named, "\n".join(named)


def test_the_version_triggers_survive_every_migration(db):
    """Caches are dropped by database triggers (the catalog's for emit, the routing
    configuration's); SQLite loses a table's triggers when a migration rebuilds the table,
    so every migrate puts them back (``events.sqlite_triggers``)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT DISTINCT c.relname FROM pg_trigger t "
                           "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal")
        watched = {row[0] for row in cursor.fetchall()}

    assert watched >= {"events_eventtype", "notifications_routingrule",
                       "channels_app_digestsetting", "channels_app_webhookendpoint"}
