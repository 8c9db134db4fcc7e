"""Incidents: escalations of unacknowledged events, and inhibit rules."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from events.models import Event, EventType
from events.validators import validate_event_type_keys, validate_group_by, validate_single_line


def validate_category_slugs(value) -> None:
    """A list of distinct category slugs, at most 20 (that each exists is the service's)."""
    if not isinstance(value, list):
        raise ValidationError('Give a list of category slugs, e.g. ["queries"].')
    if len(value) > 20:
        raise ValidationError("At most 20 categories.")
    for slug in value:
        if not isinstance(slug, str) or not slug or len(slug) > 50:
            raise ValidationError(f"{str(slug)[:60]!r} is not a category slug.")
        validate_single_line(slug)
    if len(set(value)) != len(value):
        raise ValidationError("A category is listed twice.")


class Escalation(models.Model):
    """An event sent again on more channels if nobody acknowledges it in time (a routing
    rule's ``escalate``). A row, swept by beat: it survives worker restarts, and its claim
    (pending -> sent) makes it go out once, whatever runs the sweep."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        CANCELLED = "cancelled"  # acknowledged or resolved first

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="escalations")
    channels = models.JSONField(help_text="The channels it goes out on.")
    emails = models.JSONField(default=list, blank=True, help_text="Extra addresses.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at"]
        indexes = [models.Index(fields=["due_at"], name="escalation_due_idx",
                                condition=Q(status="pending"))]

    def __str__(self):
        return f"escalation of {self.event_id} at {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class InhibitRule(models.Model):
    """While an unresolved event of ``source_event_type`` exists in a workspace, target events
    there (``target_event_types`` or ``target_categories``) whose ``equal`` payload values
    are the source's are kept as ``inhibited`` and delivered on no channel: the noise an
    outage causes (Alertmanager's idea)."""

    source_event_type = models.ForeignKey(EventType, on_delete=models.CASCADE,
                                          related_name="+")
    target_event_types = models.JSONField(default=list, blank=True,
                                          validators=[validate_event_type_keys],
                                          help_text="Event type keys.")
    target_categories = models.JSONField(default=list, blank=True,
                                         validators=[validate_category_slugs],
                                         help_text="Category slugs.")
    equal = models.JSONField(default=list, blank=True, validators=[validate_group_by],
                             help_text="Payload keys whose values must be the source's.")
    comment = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source_event_type__key", "pk"]

    def __str__(self):
        targets = ", ".join([*self.target_event_types, *self.target_categories])
        return f"{self.source_event_type.key} inhibits {targets}"

    def targets(self, event) -> bool:
        """Whether ``event`` (event type and category loaded) is a target of this rule; an
        event of the source type never is (repeats of it are grouping's)."""
        if event.event_type_id == self.source_event_type_id:
            return False
        return (event.event_type.key in self.target_event_types
                or event.event_type.category.slug in self.target_categories)

    def inhibited_by(self, event, source) -> bool:
        """Whether ``source`` (an unresolved source event) inhibits ``event``."""
        if source.workspace_id != event.workspace_id or source.pk == event.pk:
            return False
        mine = event.payload if isinstance(event.payload, dict) else {}
        theirs = source.payload if isinstance(source.payload, dict) else {}
        return all(key in theirs and mine.get(key) == theirs[key] for key in self.equal)
