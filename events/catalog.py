"""The built-in event catalog: 6 categories, 22 event types (the seed's 21, and one
about the platform's own webhooks).

``catalog_sync`` (events.services) writes it to the database; the data migration and
``manage.py sync_event_catalog`` both call it, so they can never disagree.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from .templating import validate_title_template


class Priority:
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    CHOICES = [
        (CRITICAL, "Critical"),
        (HIGH, "High"),
        (MEDIUM, "Medium"),
        (LOW, "Low"),
        (INFO, "Info"),
    ]
    VALUES = [value for value, _ in CHOICES]
    IMMEDIATE = frozenset({CRITICAL, HIGH})
    LABELS = dict(CHOICES)
    #: The one priority color map: the app's badges and bell (web/priority-colors.css is
    #: made from it), admin badges, email bodies and Slack attachments all use it. Each
    #: has at least 4.5:1 contrast with white (WCAG 2 AA): white badge text on it, and it
    #: as text on a white email, both read.
    BADGE_COLORS = {
        CRITICAL: "#dc2626",  # red (4.8:1)
        HIGH: "#c2410c",  # orange (5.2:1; the lighter #ea580c was 3.6:1)
        MEDIUM: "#a16207",  # dark yellow (4.9:1; #ca8a04 was 2.9:1)
        LOW: "#2563eb",  # blue (5.2:1)
        INFO: "#6b7280",  # gray (4.8:1)
    }
    #: A resolved event's color (Slack's "Resolved:" attachment, the resolution email).
    RESOLVED_COLOR = "#15803d"  # green (5.0:1)


@dataclass(frozen=True)
class CategoryDef:
    slug: str
    name: str
    prefix: str
    position: int


@dataclass(frozen=True)
class EventTypeDef:
    category: str
    name: str
    label: str
    priority: str
    title_template: str
    description: str
    #: Seeded when the event type is created; an admin owns them afterwards.
    group_by: tuple[str, ...] = ()
    resolves: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{CATEGORY_BY_SLUG[self.category].prefix}.{self.name}"


CATEGORIES = [
    CategoryDef("data_sources", "Data Sources", "data_source", 1),
    CategoryDef("queries", "Queries", "query", 2),
    CategoryDef("users", "Users", "user", 3),
    CategoryDef("policies", "Policies", "policy", 4),
    CategoryDef("ai_ml", "AI/ML", "ai_ml", 5),
    CategoryDef("system", "System", "system", 6),
]
CATEGORY_BY_SLUG = {category.slug: category for category in CATEGORIES}

P = Priority
EVENT_TYPES = [
    EventTypeDef("data_sources", "connection_established", "Connection established", P.INFO,
                 "Connection established: {{ datasource_name }}",
                 "A data source connected successfully.",
                 resolves=("data_source.connection_lost",)),
    EventTypeDef("data_sources", "connection_lost", "Connection lost", P.CRITICAL,
                 "Connection lost: {{ datasource_name }}",
                 "A data source can no longer be reached; queries against it fail.",
                 group_by=("datasource_name",)),
    EventTypeDef("data_sources", "schema_change", "Schema change detected", P.INFO,
                 "Schema change detected: {{ datasource_name }}",
                 "Tables or columns of a data source changed."),
    EventTypeDef("data_sources", "sync_completed", "Sync completed", P.INFO,
                 "Sync completed: {{ datasource_name }}",
                 "A data source finished synchronising its metadata."),
    EventTypeDef("queries", "query_failed", "Query failed", P.HIGH,
                 "Query failed: {{ query_name|default:'query' }}",
                 "A query ended with an error."),
    EventTypeDef("queries", "query_timeout", "Query timeout", P.HIGH,
                 "Query timed out: {{ query_name|default:'query' }}",
                 "A query was stopped because it exceeded its time limit."),
    EventTypeDef("queries", "long_running_query", "Long-running query", P.MEDIUM,
                 "Long-running query: {{ query_name|default:'query' }}",
                 "A query has been running longer than the configured threshold."),
    EventTypeDef("users", "user_invited", "User invited", P.INFO,
                 "User invited: {{ email|default:'a user' }}",
                 "A user was invited to the workspace."),
    EventTypeDef("users", "invitation_accepted", "Invitation accepted", P.INFO,
                 "Invitation accepted: {{ email|default:'a user' }}",
                 "An invited user accepted the invitation."),
    EventTypeDef("users", "user_deactivated", "User deactivated", P.MEDIUM,
                 "User deactivated: {{ email|default:'a user' }}",
                 "A user account was deactivated."),
    EventTypeDef("users", "role_changed", "Role changed", P.MEDIUM,
                 "Role changed: {{ email|default:'a user' }}",
                 "A user's role in the workspace changed."),
    EventTypeDef("policies", "policy_created", "Policy created", P.LOW,
                 "Policy created: {{ policy_name|default:'policy' }}",
                 "A data access policy was created."),
    EventTypeDef("policies", "violation_detected", "Policy violation detected", P.CRITICAL,
                 "Policy violation: {{ policy_name|default:'policy' }}",
                 "An access attempt violated a data access policy."),
    EventTypeDef("policies", "policy_updated", "Policy updated", P.LOW,
                 "Policy updated: {{ policy_name|default:'policy' }}",
                 "A data access policy was changed."),
    EventTypeDef("ai_ml", "agent_triggered", "Agent triggered", P.INFO,
                 "Agent triggered: {{ agent_name|default:'agent' }}",
                 "An AI agent run started."),
    EventTypeDef("ai_ml", "agent_completed", "Agent completed", P.INFO,
                 "Agent completed: {{ agent_name|default:'agent' }}",
                 "An AI agent run finished."),
    EventTypeDef("ai_ml", "model_error", "Model error", P.HIGH,
                 "Model error: {{ model_name|default:'model' }}",
                 "A model call failed."),
    EventTypeDef("ai_ml", "embedding_reindex_started", "Embedding re-index started", P.INFO,
                 "Embedding re-index started: {{ index_name|default:'index' }}",
                 "Re-indexing of embeddings started."),
    EventTypeDef("system", "scheduled_maintenance", "Scheduled maintenance", P.MEDIUM,
                 "Scheduled maintenance: {{ window|default:'upcoming' }}",
                 "Platform maintenance is scheduled."),
    EventTypeDef("system", "platform_update_available", "Platform update available", P.LOW,
                 "Platform update available: {{ version|default:'new version' }}",
                 "A new platform version can be installed."),
    EventTypeDef("system", "storage_quota_warning", "Storage quota warning", P.HIGH,
                 "Storage quota warning: {{ usage_percent|default:'?' }}% used",
                 "Storage use is close to the workspace quota."),
    EventTypeDef("system", "webhook_endpoint_disabled", "Webhook endpoint disabled", P.HIGH,
                 "Webhook endpoint disabled: {{ endpoint_name|default:'endpoint' }}",
                 "A webhook endpoint was deactivated: it answered 410 Gone, or too many "
                 "deliveries to it failed in a row."),
]


def register_event_type(
    *, category: str, name: str, label: str, priority: str, title_template: str,
    description: str = "",
) -> EventTypeDef:
    """Add an event type of another app to the catalog; call it from ``AppConfig.ready``.

    ``manage.py sync_event_catalog`` (and ``migrate``'s catalog migration) then writes it like
    a built-in type. Raises ``ValueError`` naming the problem for an unknown category or
    priority, a name that is not a lowercase identifier, a title template that titles do
    not allow (see ``events.templating``), or a key that exists already.
    """
    if category not in CATEGORY_BY_SLUG:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORY_BY_SLUG)}")
    if priority not in Priority.VALUES:
        raise ValueError(f"unknown priority {priority!r}; known: {', '.join(Priority.VALUES)}")
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"event name {name!r} must be a lowercase identifier like 'job_failed'")
    try:
        validate_title_template(title_template)
    except ValidationError as exc:
        raise ValueError(f"title_template: {' '.join(exc.messages)}") from None
    definition = EventTypeDef(category, name, label, priority, title_template, description)
    if any(existing.key == definition.key for existing in EVENT_TYPES):
        raise ValueError(f"event type {definition.key!r} is registered already")
    EVENT_TYPES.append(definition)
    return definition


#: An event type's grouping and resolution when no one set them.
EVENT_TYPE_SETTING_DEFAULTS = {"group_by": (), "repeat_interval_minutes": 60, "resolves": ()}


def event_type_setting_defaults(key: str) -> dict:
    """What ``key``'s grouping and resolution are until an admin changes them: a built-in
    type's definition, or none (a custom type)."""
    definition = next((d for d in EVENT_TYPES if d.key == key), None)
    defaults = dict(EVENT_TYPE_SETTING_DEFAULTS)
    if definition is not None:
        defaults.update(group_by=definition.group_by, resolves=definition.resolves)
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in defaults.items()}
