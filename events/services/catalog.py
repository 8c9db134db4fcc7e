"""The event catalog's writes: the built-in catalog's sync, and event type changes."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from core.errors import ApplicationError, full_clean

from .. import catalog
from ..models import Category, EventType


@dataclass
class CatalogSyncResult:
    created: list[str]
    updated: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def catalog_sync(*, category_model=Category, event_type_model=EventType) -> CatalogSyncResult:
    """Write the built-in catalog to the database; idempotent.

    Creates missing categories and event types and refreshes their code-owned texts
    (label, description, title template, default priority). Never touches what an admin
    owns: ``enabled`` and ``priority_override``. The models are parameters so the data
    migration can pass its historical models.
    """
    result = CatalogSyncResult(created=[], updated=[])
    with transaction.atomic():
        categories = {c.slug: c for c in category_model.objects.all()}
        for definition in catalog.CATEGORIES:
            wanted = {"name": definition.name, "prefix": definition.prefix,
                      "position": definition.position}
            current = categories.get(definition.slug)
            if current is None:
                categories[definition.slug] = category_model.objects.create(
                    slug=definition.slug, **wanted
                )
                result.created.append(definition.slug)
            elif _assign_changed(current, wanted):
                current.save(update_fields=list(wanted))
                result.updated.append(definition.slug)

        event_types = {t.key: t for t in event_type_model.objects.all()}
        for definition in catalog.EVENT_TYPES:
            wanted = {
                "category_id": categories[definition.category].pk,
                "name": definition.name,
                "label": definition.label,
                "description": definition.description,
                "title_template": definition.title_template,
                "default_priority": definition.priority,
                "builtin": True,
            }
            current = event_types.get(definition.key)
            if current is None:  # seeded once; an admin owns grouping and resolution after
                event_type_model.objects.create(key=definition.key,
                                                **_seeded(event_type_model, definition), **wanted)
                result.created.append(definition.key)
            elif _assign_changed(current, wanted):
                current.save(update_fields=list(wanted))
                result.updated.append(definition.key)
    return result


def _check_resolves(event_type: EventType) -> None:
    """Each event type it resolves exists, and is not itself."""
    keys = list(event_type.resolves or [])
    if event_type.key in keys:
        raise ApplicationError("An event type cannot resolve itself.", field="resolves")
    known = set(EventType.objects.filter(key__in=keys).values_list("key", flat=True))
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ApplicationError(f"unknown event type {unknown[0][:120]!r}", field="resolves")


def _seeded(event_type_model, definition) -> dict:
    """A new built-in type's grouping and resolution, where the (historical) model has them."""
    names = {field.name for field in event_type_model._meta.get_fields()}
    seeded = {"group_by": list(definition.group_by), "resolves": list(definition.resolves)}
    return {name: value for name, value in seeded.items() if name in names}


def _assign_changed(instance, values: dict) -> bool:
    changed = False
    for field, value in values.items():
        if getattr(instance, field) != value:
            setattr(instance, field, value)
            changed = True
    return changed


#: What an admin may change on a custom (not built-in) event type; code owns the built-ins'.
EVENT_TYPE_DEFINITION_FIELDS = ("category", "name", "label", "description", "title_template",
                                "default_priority")


def event_type_create(
    *,
    category: Category,
    name: str,
    label: str,
    title_template: str,
    default_priority: str,
    description: str = "",
    priority_override: str = "",
    enabled: bool = True,
    group_by: list[str] | None = None,
    repeat_interval_minutes: int = 60,
    resolves: list[str] | None = None,
) -> EventType:
    """Add a custom event type; its key is ``<category prefix>.<name>``.

    Raises ``ApplicationError`` naming the field for a duplicate name, an unknown priority
    or a title template that does not compile.
    """
    event_type = EventType(
        key=f"{category.prefix}.{name}", category=category, name=name, label=label,
        description=description, title_template=title_template, default_priority=default_priority,
        priority_override=priority_override, enabled=enabled, builtin=False,
        group_by=list(group_by or []), repeat_interval_minutes=repeat_interval_minutes,
        resolves=list(resolves or []),
    )
    full_clean(event_type)
    _check_resolves(event_type)
    event_type.save(force_insert=True)
    return event_type


def event_type_update(
    *,
    event_type: EventType,
    enabled: bool | None = None,
    priority_override: str | None = None,
    group_by: list[str] | None = None,
    repeat_interval_minutes: int | None = None,
    resolves: list[str] | None = None,
    **definition: Any,
) -> EventType:
    """Change an event type and save only what changed; the one way event types change.

    ``enabled``, ``priority_override`` (``""`` clears it), ``group_by`` and
    ``repeat_interval_minutes`` (how repeats are folded) and ``resolves`` (the event types
    an event of it resolves) may change on any event type;
    ``definition`` (``EVENT_TYPE_DEFINITION_FIELDS``) only on a custom one. Raises
    ``ApplicationError`` naming the field it refuses (the model's validation of a changed
    definition included).
    """
    fields = []
    if enabled is not None:
        event_type.enabled = enabled
        fields.append("enabled")
    if priority_override is not None:
        if priority_override and priority_override not in catalog.Priority.VALUES:
            raise ApplicationError(
                f"unknown priority {priority_override!r}; choose from "
                f"{', '.join(catalog.Priority.VALUES)} or '' for none",
                field="priority_override",
            )
        event_type.priority_override = priority_override
        fields.append("priority_override")
    grouping = {name: value for name, value in (("group_by", group_by),
                                                ("repeat_interval_minutes",
                                                 repeat_interval_minutes),
                                                ("resolves", resolves)) if value is not None}
    for field, value in grouping.items():
        setattr(event_type, field, value)
        fields.append(field)
    if grouping:
        full_clean(event_type, exclude=[f.name for f in EventType._meta.fields
                                        if f.name not in grouping])
        _check_resolves(event_type)
    for field, value in definition.items():
        if field not in EVENT_TYPE_DEFINITION_FIELDS:
            raise ApplicationError(f"{field} cannot be changed", field=field)
        if event_type.builtin:
            raise ApplicationError(
                f"{field} of a built-in event type is defined in code", field=field
            )
        setattr(event_type, field, value)
        fields.append(field)
    if definition:
        full_clean(event_type)  # also derives the key from the category and the name
        fields.append("key")
    if fields:
        event_type.save(update_fields=fields)
    return event_type
