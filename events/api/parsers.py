"""Request parsers that answer 400, never 500, to any body."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested too deeply for Python's parser is a 400 too."""

    too_deep = "JSON parse error - nested too deeply"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(self.too_deep) from None


class EmitJSONParser(JSONParser):
    """For ``POST /api/events/``, where only the payload nests: the error names it."""

    @property
    def too_deep(self):
        return {"payload": [f"payload is nested deeper than "
                            f"{settings.DATAFI_MAX_PAYLOAD_DEPTH} levels"]}
