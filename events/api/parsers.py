"""Request parsers that answer 400, never 500, to any body."""

import codecs

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from events.services.emit import MAX_INTEGER_DIGITS


class _TooManyDigits(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _TooManyDigits(text)
    return int(text)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, where a body too deep or a number too long is a 400, not a 500.

    Integers longer than ``MAX_INTEGER_DIGITS`` are refused before Python converts them;
    nesting too deep for Python's (recursive) parser is refused instead of crashing.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return json.load(
                codecs.getreader(encoding)(stream),
                parse_constant=json.strict_constant if self.strict else None,
                parse_int=_parse_int,
            )
        except RecursionError:
            raise ParseError(self.error("nested too deeply")) from None
        except _TooManyDigits:
            raise ParseError(self.error(
                f"an integer has more than {MAX_INTEGER_DIGITS} digits")) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

    def error(self, problem: str):
        return f"JSON parse error - {problem}"


class EmitJSONParser(JSONParser):
    """For ``POST /api/events/``, where only the payload nests or holds numbers: the error
    names it, like emit()'s own checks."""

    def error(self, problem: str):
        if problem == "nested too deeply":
            problem = f"nested deeper than {settings.DATAFI_MAX_PAYLOAD_DEPTH} levels"
        return {"payload": [f"payload is {problem}" if problem.startswith("nested")
                            else f"payload: {problem}"]}
