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
