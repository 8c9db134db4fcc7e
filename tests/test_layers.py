"""Imports point one way: events <- channels_app <- notifications.

Every import statement counts, including ones inside functions and ``TYPE_CHECKING``
blocks, and so do ``import_module``/``import_string`` calls with a literal module name.
"""

import ast
from pathlib import Path

from tests.support import ROOT

#: App -> the other apps it may import.
ALLOWED = {
    "events": set(),
    "channels_app": {"events"},
    "notifications": {"events", "channels_app"},
    "web": {"events"},  # pages read and write through the REST API, never the models
}
DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def imported_modules(tree: ast.AST, *, package: str):
    """(line, absolute module name) for every import in ``tree``, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if (name in DYNAMIC_IMPORTS and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                yield node.lineno, node.args[0].value


def violations(app: str, path: Path, source: str) -> list[str]:
    relative = path.relative_to(ROOT)
    package = ".".join(relative.with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    found = []
    imports = imported_modules(ast.parse(source, filename=str(path)), package=package)
    for line, module in sorted(imports):
        target = module.split(".")[0]
        if target in ALLOWED and target != app and target not in ALLOWED[app]:
            found.append(f"{relative}:{line}: {app} imports {module}")
    return found


def test_apps_import_only_the_layers_below_them():
    problems = []
    for app in ALLOWED:
        files = sorted((ROOT / app).rglob("*.py"))
        assert files, f"no Python files found under {app}/"
        for path in files:
            problems += violations(app, path, path.read_text())
    assert not problems, "imports against the layers (events <- channels_app <- " \
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
