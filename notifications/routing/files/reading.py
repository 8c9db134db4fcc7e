"""Reading a routing file safely: size, encoding, and a YAML loader that refuses what a
routing file never needs before it costs (anchors and aliases, deep nesting, complex or
repeated keys). Errors name the key path and quote at most a short excerpt."""

from collections.abc import Hashable

import yaml
from django.conf import settings as django_settings

from core.errors import ApplicationError

#: routing > category > event > setting > list is 5 levels; this leaves room, nothing more.
MAX_DEPTH = 10


def excerpt(value, limit: int = 40) -> str:
    """``value`` for an error message: its repr, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value, limit: int = 40) -> str:
    return repr(excerpt(value, limit)) if isinstance(value, str) else excerpt(value, limit)


class RoutingFileError(ApplicationError):
    """A routing file was refused; ``path`` is the key path of the offending entry."""

    field = "yaml"

    def __init__(self, path: str, problem: str, *, field: str | None = None):
        path, problem = excerpt(path, 160), excerpt(problem, 300)  # never the whole file
        super().__init__(f"{path}: {problem}", field=field)
        self.path = path
        self.problem = problem

    def as_data(self) -> dict:
        return {**super().as_data(), "path": self.path}


def routing_file_read(upload, *, field: str | None = "file") -> bytes:
    """The bytes of an uploaded routing file, reading one byte past the size limit at most;
    raises ``RoutingFileError`` (naming ``field``) for a larger file."""
    data = upload.read(django_settings.DATAFI_MAX_ROUTING_FILE_BYTES + 1)
    check_size(len(data), field=field)
    return data


def check_size(size: int, *, field: str | None = None) -> None:
    """The one check of a routing file's size (REST, the admin, the command)."""
    limit = django_settings.DATAFI_MAX_ROUTING_FILE_BYTES
    if size > limit:
        raise RoutingFileError("(file)", f"larger than the limit of {limit // 1024} KiB",
                               field=field)


def checked_text(text: str | bytes) -> str:
    """The file's text: at most ``DATAFI_MAX_ROUTING_FILE_BYTES``, UTF-8."""
    check_size(len(text) if isinstance(text, bytes)
               else len(text.encode("utf-8", "surrogatepass")))
    if isinstance(text, bytes):
        try:
            return text.decode()
        except UnicodeDecodeError as exc:
            raise RoutingFileError(
                "(file)", f"not UTF-8 text (invalid byte at offset {exc.start})"
            ) from None
    return text


def load(text: str):
    """The YAML document of ``text``; raises ``RoutingFileError`` saying where it is bad."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the document"
        problem = excerpt(getattr(exc, "problem", None) or str(exc), 160)
        raise RoutingFileError("(yaml)", f"malformed YAML at {where}: {problem}") from None


def dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_FlowListDumper, sort_keys=False,
                     default_flow_style=None)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader for routing files: what they never need is refused before it costs.

    No anchors or aliases (an alias bomb expands a few hundred bytes into gigabytes), at
    most ``MAX_DEPTH`` levels (composing recurses), keys that are plain values, and no key
    given twice in one mapping (instead of silently keeping the last).
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (& and *) are not allowed in routing files",
                event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or a mapping",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {quote(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _FlowListDumper(yaml.SafeDumper):
    """Lists inline (``[in_app, email]``) like the seed; mappings in block style."""


_FlowListDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=True)
)
_FlowListDumper.add_representer(
    dict, lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=False)
)
