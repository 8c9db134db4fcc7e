"""Title templates: a small, safe subset of the Django template language, rendered as plain text.

A title template is text with ``{{ variable }}`` and ``{{ variable|filter:"literal" }}``
nodes, nothing else: no ``{% %}`` tags at all (no include, extends, load, url, ssi, debug,
if, for), only the filters in ``ALLOWED_FILTERS``, and filter arguments that are literals
(a payload value can never become an argument). ``validate_title_template`` (the model
field's validator, so the admin, the API and code registration all use it) refuses anything
else and does a sample render.

Time bound, without signals or threads: every input is bounded (the template is at most
300 characters, so at most about 150 filter applications; the payload at most 64 KiB and
``DATAFI_MAX_PAYLOAD_DEPTH`` deep) and every allowed filter is linear in its input with
arguments bounded at save time (``floatformat`` precision, ``stringformat`` width). Payload
values are rendered from a copy, so a lookup such as ``{{ items.pop }}`` cannot change the
event. The output is cut to 300 characters.

Titles are plain text (the bell, email subjects, webhook bodies): rendering never
HTML-escapes; an HTML page escapes a title once, on output.
"""

import copy
import logging
import re
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.template import Context, Engine, Library, TemplateSyntaxError
from django.template.base import TextNode, VariableNode
from django.template.defaultfilters import register as default_filters

logger = logging.getLogger(__name__)

TITLE_MAX_LENGTH = 300

ALLOWED_FILTERS = (
    "add", "capfirst", "cut", "date", "default", "default_if_none", "first", "floatformat",
    "join", "last", "length", "lower", "pluralize", "slice", "stringformat", "time", "title",
    "truncatechars", "truncatewords", "upper", "yesno",
)
_MAX_FLOAT_PRECISION = 20
# stringformat: one conversion with a width and precision of at most two digits each.
_STRINGFORMAT_ARG = re.compile(r"[#0 +-]{0,4}\d{0,2}(\.\d{1,2})?[sdifeEgGxXo]")

_filters = Library()
for _name in ALLOWED_FILTERS:
    _filters.filters[_name] = default_filters.filters[_name]

_engine = Engine(autoescape=False, builtins=[])
_engine.template_builtins = [_filters]  # the only filters and tags a title can use


class TitleTemplateError(ValueError):
    """The template uses something titles do not allow; the message says what."""


@lru_cache(maxsize=512)
def _compile(source: str):
    """Parse and check ``source``; raises TemplateSyntaxError or TitleTemplateError."""
    if len(source) > TITLE_MAX_LENGTH:
        raise TitleTemplateError(f"longer than {TITLE_MAX_LENGTH} characters")
    template = _engine.from_string(source)
    for node in template.nodelist:
        if isinstance(node, TextNode):
            continue
        if not isinstance(node, VariableNode):  # a tag: none are registered, but be sure
            raise TitleTemplateError("only {{ variable|filter }} and text are allowed")
        for func, args in node.filter_expression.filters:
            name = getattr(func, "_filter_name", func.__name__)
            for is_lookup, value in args:
                if is_lookup and value.literal is None:  # numbers parse as literal Variables
                    raise TitleTemplateError(
                        f"the argument of '{name}' must be a literal like \"text\" or 3"
                    )
                _check_argument(name, value.literal if is_lookup else value)
    return template


def _check_argument(name: str, value) -> None:
    if name == "floatformat":
        digits = str(value).rstrip("gu")
        if not re.fullmatch(r"-?\d{1,3}", digits) or abs(int(digits)) > _MAX_FLOAT_PRECISION:
            raise TitleTemplateError(
                f"floatformat takes a precision between -{_MAX_FLOAT_PRECISION} and "
                f"{_MAX_FLOAT_PRECISION}"
            )
    elif name == "stringformat" and not _STRINGFORMAT_ARG.fullmatch(str(value)):
        raise TitleTemplateError(
            "stringformat takes one conversion with at most two digits of width, e.g. \"05d\""
        )


def render_title(template_source: str, payload: dict, *, fallback: str, event_id=None) -> str:
    """Render an event type's title template with the payload as plain text; never raises.

    A template that fails to render for any reason (refused, does not compile, a filter that
    raises) gives ``fallback``, the event type's label, and logs a warning naming
    ``event_id``: a bad template degrades a title, it never loses a notification.
    """
    try:
        context = Context(copy.deepcopy(payload) if payload else {}, autoescape=False)
        text = _compile(template_source).render(context)
    except Exception as exc:  # any failure of any template must only cost the title
        logger.warning("event %s: title template %r failed (%s: %s); using the label %r",
                       event_id, template_source[:80], type(exc).__name__, exc, fallback)
        return fallback
    return " ".join(text.split())[:TITLE_MAX_LENGTH] or fallback


def validate_title_template(source: str) -> None:
    """Model validator: refuse a title template that titles do not allow, saying why.

    Checks the allowed subset and renders it twice as a sample: with no payload, and with
    every top-level variable set to a sample string.
    """
    try:
        template = _compile(source)
    except TemplateSyntaxError as exc:
        raise ValidationError(
            f"Not a valid template: {str(exc).rstrip('.?')}. Titles allow "
            f"{{{{ variable }}}} and these filters: {', '.join(ALLOWED_FILTERS)}; "
            "no {% %} tags."
        ) from None
    except TitleTemplateError as exc:
        raise ValidationError(f"Not a valid template: {exc}.") from None
    names = {
        node.filter_expression.var.var.split(".")[0]
        for node in template.nodelist
        if isinstance(node, VariableNode) and hasattr(node.filter_expression.var, "var")
    }
    for sample in ({}, {name: "sample" for name in names}):
        try:
            template.render(Context(sample, autoescape=False))
        except Exception as exc:  # the sample render is the check: say what it raised
            raise ValidationError(
                f"The title template fails on a sample payload {sample}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
