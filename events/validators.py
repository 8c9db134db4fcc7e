"""Validators of text shared by every app's models (events is the floor)."""

import unicodedata

from django.core.exceptions import ValidationError

#: Unicode categories that break a line or are not text: control characters (CR, LF, tab,
#: NUL, DEL, the C1 controls) and the line and paragraph separators.
LINE_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def validate_single_line(value) -> None:
    """Refuse a value holding a control character or a line break: a name, a host or a login
    that may end up in a header, a log line or a page must stay one line.

    The error names the first offending character by its code point, never echoes it.
    """
    for char in str(value):
        if unicodedata.category(char) in LINE_BREAKING_CATEGORIES:
            raise ValidationError(
                "Must be one line of text without control characters (found U+%(code)s).",
                code="control_character", params={"code": f"{ord(char):04X}"})


# The same, as the OpenAPI schema says it (core.openapi): no Cc, Zl or Zp character.
validate_single_line.refused_characters = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"


#: The most payload keys an event type groups repeats by.
GROUP_BY_MAX_KEYS = 10
_PAYLOAD_KEY_MAX = 100


def validate_group_by(value) -> None:
    """A list of distinct payload keys (strings, one line, at most 100 characters each), at
    most ``GROUP_BY_MAX_KEYS``: what makes two events of a type "the same" (a repeat, or the
    event another one resolves)."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of payload keys, e.g. [\"datasource_name\"].")
    if len(value) > GROUP_BY_MAX_KEYS:
        raise ValidationError(f"At most {GROUP_BY_MAX_KEYS} payload keys.")
    for key in value:
        if not isinstance(key, str) or not key.strip() or len(key) > _PAYLOAD_KEY_MAX:
            raise ValidationError(
                f"Each payload key is a non-empty string of at most {_PAYLOAD_KEY_MAX} "
                "characters.")
        validate_single_line(key)
    if len(set(value)) != len(value):
        raise ValidationError("A payload key is listed twice.")


def validate_event_type_keys(value) -> None:
    """A list of distinct event type keys (``<prefix>.<name>``), at most 20; whether each
    exists is checked where it is set (the services), against the catalog."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of event type keys, e.g. "
                              '["data_source.connection_lost"].')
    if len(value) > 20:
        raise ValidationError("At most 20 event types.")
    for key in value:
        if not isinstance(key, str) or "." not in key or len(key) > 120:
            raise ValidationError(f"{str(key)[:60]!r} is not an event type key.")
        validate_single_line(key)
    if len(set(value)) != len(value):
        raise ValidationError("An event type is listed twice.")
