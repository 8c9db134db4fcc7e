from functools import lru_cache

from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError

# Titles are plain text (in-app, email subjects, webhook consumers): no HTML escaping here.
# A Context escapes unless told not to, whatever the engine says: render_title says so.
_engine = Engine(autoescape=False, builtins=["django.template.defaultfilters"])


@lru_cache(maxsize=512)
def _compile(source: str):
    return _engine.from_string(source)


def render_title(template_source: str, payload: dict, *, fallback: str) -> str:
    """Render an event type's title template with the payload; never raises.

    A template that does not compile gives ``fallback`` (the event type's label), so a bad
    template edited in the admin degrades a title instead of losing a notification.
    """
    try:
        text = _compile(template_source).render(Context(payload or {}, autoescape=False))
    except (TemplateSyntaxError, TypeError, ValueError):
        return fallback
    return " ".join(text.split())[:300] or fallback


def validate_title_template(source: str) -> None:
    """Model validator: refuse a title template that does not compile, saying why."""
    try:
        _engine.from_string(source)
    except TemplateSyntaxError as exc:
        raise ValidationError(f"Not a valid template: {exc}") from None
