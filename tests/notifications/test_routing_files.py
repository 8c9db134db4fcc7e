"""Routing YAML files: the seed's example imports verbatim, export/import round-trips,
and a bad file is refused with its key path while nothing of it is applied.

Through the service (``routing_import`` / ``routing_export``), the management commands
and the REST endpoints ``/api/routing/import/`` and ``/api/routing/export/``.
"""

import io

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from events.models import Category, EventType
from notifications.models import RoutingRule
from notifications.routing.files import RoutingFileError, routing_export, routing_import

# Verbatim from PRODUCT.md "Routing" (the seed's example, with its comment line).
SEED = """\
# Example routing configuration
routing:
  data_sources:
    connection_lost:
      channels: [in_app, email, webhook]
      priority: critical
    schema_change:
      channels: [in_app]
      priority: info
  queries:
    query_failed:
      channels: [in_app, email]
      priority: high
  policies:
    violation_detected:
      channels: [in_app, email, webhook]
      priority: critical
"""

SEED_RULES = {
    "data_source.connection_lost": ["in_app", "email", "webhook"],
    "data_source.schema_change": ["in_app"],
    "query.query_failed": ["in_app", "email"],
    "policy.violation_detected": ["in_app", "email", "webhook"],
}
SEED_OVERRIDES = {
    "data_source.connection_lost": "critical",
    "data_source.schema_change": "info",
    "query.query_failed": "high",
    "policy.violation_detected": "critical",
}

# The seed plus a category rule (category-level ``channels:``), distribution lists on a
# category and on an event type, and a priority-only entry.
RICH = """\
routing:
  data_sources:
    connection_lost:
      channels: [in_app, email, webhook]
      emails: [oncall@example.com, dba@example.com]
      priority: critical
    schema_change:
      channels: [in_app]
      priority: info
  queries:
    channels: [in_app, email]
    emails: [data-team@example.com]
    query_failed:
      channels: [in_app, email]
      priority: high
    query_timeout:
      priority: low
  policies:
    violation_detected:
      channels: [in_app, email, webhook]
      priority: critical
  system:
    channels: [webhook]
"""


def routing_state() -> dict:
    """Everything a routing file can change: rules (by target) and priority overrides."""
    rules = {}
    for rule in RoutingRule.objects.select_related("category", "event_type"):
        target = rule.event_type.key if rule.event_type_id else f"category:{rule.category.slug}"
        rules[target] = (rule.pk, list(rule.channels), list(rule.extra_emails))
    overrides = dict(
        EventType.objects.exclude(priority_override="").values_list("key", "priority_override")
    )
    enabled = dict(EventType.objects.values_list("key", "enabled"))
    return {"rules": rules, "overrides": overrides, "enabled": enabled}


def rule_channels() -> dict:
    return {target: channels for target, (_, channels, _) in routing_state()["rules"].items()}


def import_file(tmp_path, text, *args) -> str:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    out = io.StringIO()
    call_command("import_routing", str(path), *args, stdout=out)
    return out.getvalue()


def export_text() -> str:
    out = io.StringIO()
    call_command("export_routing", stdout=out)
    return out.getvalue()


# --- the seed's example -------------------------------------------------------------------

def test_seed_example_imports_exactly_its_channels_and_priorities(db, tmp_path):
    enabled_before = routing_state()["enabled"]

    output = import_file(tmp_path, SEED)

    state = routing_state()
    assert rule_channels() == SEED_RULES
    assert state["overrides"] == SEED_OVERRIDES
    assert all(extra == [] for _, _, extra in state["rules"].values())
    assert not RoutingRule.objects.filter(category__isnull=False).exists()
    assert state["enabled"] == enabled_before
    assert "4 rules" in output


def test_seed_export_prints_the_seed_format(db, tmp_path):
    import_file(tmp_path, SEED)

    exported = export_text()

    # Same document, same layout: only the comment line differs.
    assert exported.startswith("#")
    assert exported.split("\n", 1)[1] == SEED.split("\n", 1)[1]


def test_empty_configuration_exports_an_importable_file(db, tmp_path):
    exported = export_text()

    assert yaml.safe_load(exported) == {"routing": {}}
    import_file(tmp_path, exported)
    assert routing_state()["rules"] == {}


@pytest.mark.parametrize("replace", [False, True], ids=["merge", "replace"])
@pytest.mark.parametrize("configuration", [SEED, RICH], ids=["seed", "rich"])
def test_export_then_import_is_a_no_op(db, tmp_path, configuration, replace):
    import_file(tmp_path, configuration)
    before = routing_state()
    touched = dict(RoutingRule.objects.values_list("pk", "updated_at"))
    exported = export_text()

    output = import_file(tmp_path, exported, *(["--replace"] if replace else []))

    assert routing_state() == before
    assert export_text() == exported
    assert "0 rules and 0 priority overrides changed, 0 removed" in output
    assert dict(RoutingRule.objects.values_list("pk", "updated_at")) == touched


def test_rich_configuration_imports_category_rules_emails_and_priority_only_entries(
    db, tmp_path
):
    import_file(tmp_path, RICH)

    rules = routing_state()["rules"]
    assert rules["category:queries"][1:] == (["in_app", "email"], ["data-team@example.com"])
    assert rules["category:system"][1:] == (["webhook"], [])
    assert rules["data_source.connection_lost"][2] == ["oncall@example.com", "dba@example.com"]
    # A priority-only entry sets the override and no rule.
    assert "query.query_timeout" not in rules
    assert EventType.objects.get(key="query.query_timeout").priority_override == "low"
    exported = yaml.safe_load(export_text())["routing"]
    assert exported["queries"]["channels"] == ["in_app", "email"]
    assert exported["queries"]["emails"] == ["data-team@example.com"]
    assert exported["queries"]["query_timeout"] == {"priority": "low"}
    assert exported["system"] == {"channels": ["webhook"]}


def test_import_without_replace_keeps_what_the_file_omits(db, tmp_path):
    import_file(tmp_path, RICH)

    import_file(tmp_path, "routing:\n  users:\n    user_invited:\n      channels: [email]\n")

    channels = rule_channels()
    assert channels["user.user_invited"] == ["email"]
    assert channels["category:queries"] == ["in_app", "email"]
    assert EventType.objects.get(key="query.query_timeout").priority_override == "low"


def test_replace_removes_rules_and_overrides_the_file_omits(db, tmp_path):
    import_file(tmp_path, RICH)
    assert len(rule_channels()) == 6

    output = import_file(tmp_path, SEED, "--replace")

    state = routing_state()
    assert rule_channels() == SEED_RULES
    assert state["overrides"] == SEED_OVERRIDES
    # The seed's entries carry no emails, so the distribution list is gone too.
    assert state["rules"]["data_source.connection_lost"][2] == []
    assert "3 removed" in output  # two category rules and one priority override


def test_replace_with_an_empty_routing_clears_everything(db, tmp_path):
    import_file(tmp_path, RICH)

    import_file(tmp_path, "routing: {}\n", "--replace")

    state = routing_state()
    assert state["rules"] == {}
    assert state["overrides"] == {}


def test_import_reads_standard_input(db, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(SEED))

    call_command("import_routing", "-", stdout=io.StringIO())

    assert rule_channels() == SEED_RULES


def test_import_of_a_missing_file_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_routing", str(tmp_path / "nope.yaml"))


# --- bad files ----------------------------------------------------------------------------

def _event_entry(settings: str, category="queries", name="query_failed") -> str:
    return f"routing:\n  {category}:\n    {name}:\n" + "".join(
        f"      {line}\n" for line in settings.splitlines()
    )


BAD_FILES = [
    pytest.param(
        "routing:\n  datasources:\n    connection_lost:\n      channels: [in_app]\n",
        "routing.datasources", "unknown category", id="unknown-category"),
    pytest.param(
        _event_entry("channels: [in_app]", name="query_faild"),
        "routing.queries.query_faild", "unknown event", id="unknown-event"),
    pytest.param(
        _event_entry("channels: [in_app]", category="data_sources"),
        "routing.data_sources.query_failed", "unknown event", id="event-of-another-category"),
    pytest.param(
        _event_entry("channels: [in_app, sms]"),
        "routing.queries.query_failed.channels[1]", "Unknown channel 'sms'",
        id="unknown-channel"),
    pytest.param(
        _event_entry("channels: [in_app]\npriority: urgent"),
        "routing.queries.query_failed.priority", "unknown priority 'urgent'",
        id="unknown-priority"),
    pytest.param(
        _event_entry("channels: [in_app]\ndelay: 5m"),
        "routing.queries.query_failed.delay", "unknown setting", id="unknown-setting"),
    pytest.param(
        _event_entry("channels: []"),
        "routing.queries.query_failed.channels", "Choose at least one channel",
        id="empty-channels"),
    pytest.param(
        _event_entry("channels: in_app"),
        "routing.queries.query_failed.channels", "a list of channels", id="channels-not-a-list"),
    pytest.param(
        _event_entry("channels: [email, email]"),
        "routing.queries.query_failed.channels[1]", "twice", id="duplicate-channel"),
    pytest.param(
        _event_entry("channels: [email]\nemails: [not-an-address]"),
        "routing.queries.query_failed.emails", "not a valid email", id="bad-email"),
    pytest.param(
        _event_entry("channels: [email]\nemails: [123]"),
        "routing.queries.query_failed.emails", "not a valid email", id="non-text-email"),
    pytest.param(
        _event_entry("emails: [oncall@example.com]"),
        "routing.queries.query_failed.emails", "needs channels", id="emails-without-channels"),
    pytest.param(
        "routing:\n  queries:\n    query_failed:\n",
        "routing.queries.query_failed", "channels, priority and/or grouping", id="empty-entry"),
    pytest.param(
        "routing:\n  queries:\n    priority: high\n",
        "routing.queries.priority", "per event type", id="category-priority"),
    pytest.param(
        "routing:\n  queries: [query_failed]\n",
        "routing.queries", "mapping", id="category-not-a-mapping"),
    pytest.param(
        "routing:\n  queries:\n    query_failed:\n      channels: [in_app\n  policies: {}\n",
        "(yaml)", "line 5", id="malformed-yaml"),
    pytest.param(
        # A key given twice would silently drop the first block: refused instead.
        "routing:\n  queries:\n    query_failed:\n      channels: [in_app]\n"
        "  queries:\n    query_timeout:\n      priority: high\n",
        "(yaml)", "duplicate key 'queries'", id="duplicate-key"),
    pytest.param(
        "queries:\n  query_failed:\n    channels: [in_app]\n",
        "routing", "missing", id="missing-routing"),
    pytest.param("", "routing", "missing", id="empty-file"),
    pytest.param(
        SEED + "notify: everyone\n", "notify", "unknown top-level key", id="extra-top-level-key"),
    pytest.param(
        # The seed's good entries come first; the bad last one refuses the whole file.
        SEED.replace("violation_detected:\n      channels: [in_app, email, webhook]",
                     "violation_detected:\n      channels: [in_app, email, pager]"),
        "routing.policies.violation_detected.channels[2]", "Unknown channel 'pager'",
        id="good-entries-then-a-bad-one"),
]


@pytest.fixture
def configured(db):
    """A configuration a bad file must leave alone (and that differs from the seed)."""
    routing_import(RICH.replace("priority: critical", "priority: high"))
    return routing_state()


@pytest.mark.parametrize(("text", "path", "problem"), BAD_FILES)
def test_bad_file_is_refused_naming_its_key_path_and_changes_nothing(
    configured, text, path, problem
):
    with pytest.raises(RoutingFileError) as caught:
        routing_import(text)

    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)
    assert routing_state() == configured


@pytest.mark.parametrize(("text", "path", "problem"), BAD_FILES)
def test_bad_file_through_the_command_changes_nothing(configured, tmp_path, text, path, problem):
    with pytest.raises(CommandError) as caught:
        import_file(tmp_path, text, "--replace")

    message = str(caught.value)
    assert path in message
    assert problem in message
    assert "Nothing was changed" in message
    assert routing_state() == configured


def test_good_entries_before_a_bad_one_are_not_applied(db):
    bad = SEED + "  system:\n    scheduled_maintenance:\n      channels: [sms]\n"

    with pytest.raises(RoutingFileError):
        routing_import(bad)

    assert not RoutingRule.objects.exists()
    assert not EventType.objects.exclude(priority_override="").exists()


# --- REST: /api/routing/import/ and /api/routing/export/ ----------------------------------

IMPORT_URL = "/api/routing/import/"
EXPORT_URL = "/api/routing/export/"


def test_api_import_json_applies_the_seed(staff_api):
    response = staff_api.post(IMPORT_URL, {"yaml": SEED}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"rules_changed": 4, "priorities_changed": 4, "removed": 0,
                               "grouping_changed": 0, "inhibit_rules_changed": 0}
    assert rule_channels() == SEED_RULES
    assert routing_state()["overrides"] == SEED_OVERRIDES


def test_api_import_file_upload_applies_the_seed(staff_api):
    upload = SimpleUploadedFile("routing.yaml", SEED.encode(), content_type="application/yaml")

    response = staff_api.post(IMPORT_URL, {"file": upload}, format="multipart")

    assert response.status_code == 200, response.content
    assert rule_channels() == SEED_RULES


def test_api_import_with_replace_removes_what_the_file_omits(staff_api):
    routing_import(RICH)

    response = staff_api.post(IMPORT_URL, {"yaml": SEED, "replace": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["removed"] == 3
    assert rule_channels() == SEED_RULES


@pytest.mark.parametrize("as_file", [False, True], ids=["json", "multipart"])
@pytest.mark.parametrize(("text", "path", "problem"), [
    p for p in BAD_FILES if p.id in {"unknown-category", "unknown-event", "unknown-channel",
                                     "unknown-priority", "malformed-yaml",
                                     "good-entries-then-a-bad-one"}
])
def test_api_import_of_a_bad_file_is_400_naming_the_path(
    configured, staff_api, as_file, text, path, problem
):
    if as_file:
        upload = SimpleUploadedFile("routing.yaml", text.encode())
        response = staff_api.post(IMPORT_URL, {"file": upload}, format="multipart")
    else:
        response = staff_api.post(IMPORT_URL, {"yaml": text}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["path"] == path
    assert path in body["yaml"][0]
    assert problem in body["yaml"][0]
    assert routing_state() == configured


def test_api_import_without_a_file_is_400(staff_api):
    response = staff_api.post(IMPORT_URL, {}, format="json")

    assert response.status_code == 400
    assert "yaml" in response.json()


def test_api_import_and_export_are_staff_only(api):
    assert api.post(IMPORT_URL, {"yaml": SEED}, format="json").status_code == 403
    assert api.get(EXPORT_URL).status_code == 403
    assert not RoutingRule.objects.exists()


def test_api_export_returns_the_routing_yaml(staff_api):
    routing_import(RICH)

    response = staff_api.get(EXPORT_URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    text = response.content.decode()
    assert text == routing_export()
    document = yaml.safe_load(text)
    assert document["routing"]["data_sources"]["connection_lost"]["channels"] == [
        "in_app", "email", "webhook"]
    assert document["routing"]["system"] == {"channels": ["webhook"]}


def test_api_export_imports_back_as_a_no_op(staff_api):
    routing_import(RICH)
    before = routing_state()
    exported = staff_api.get(EXPORT_URL).content.decode()

    response = staff_api.post(IMPORT_URL, {"yaml": exported, "replace": True}, format="json")

    assert response.status_code == 200
    assert response.json()["removed"] == 0
    assert routing_state() == before
    assert staff_api.get(EXPORT_URL).content.decode() == exported


def test_file_addresses_event_types_added_by_an_admin(db):
    queries = Category.objects.get(slug="queries")
    EventType.objects.create(key="query.quota_exceeded", category=queries, name="quota_exceeded",
                             label="Quota exceeded", title_template="Quota exceeded",
                             default_priority="medium")

    routing_import("routing:\n  queries:\n    quota_exceeded:\n      channels: [email]\n")

    assert rule_channels() == {"query.quota_exceeded": ["email"]}
    assert "quota_exceeded:\n      channels: [email]" in routing_export()


# --- hostile files: bounded time and memory, a short 400 / CommandError, nothing applied ---

# The 374-byte "billion laughs" that produced a 351 MB error body and 1 GB of worker memory.
ALIAS_BOMB = (
    "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "routing: *i\n"
)
HOSTILE_FILES = [
    pytest.param(ALIAS_BOMB, "(yaml)", "anchors and aliases", id="alias-bomb"),
    pytest.param("routing:\n  queries: &q\n    query_failed:\n      channels: [in_app]\n",
                 "(yaml)", "anchors and aliases", id="anchor"),
    pytest.param("routing:\n  ? [a, b]\n  : 1\n", "(yaml)", "plain value", id="unhashable-key"),
    pytest.param("routing:\n  ? {a: 1}\n  : 1\n", "(yaml)", "plain value",
                 id="mapping-as-key"),
    pytest.param("routing: " + "[" * 1000 + "]" * 1000 + "\n", "(yaml)", "nested deeper",
                 id="nested-1000-deep"),
    pytest.param("routing:\n" + "".join(" " * (2 * n + 2) + f"k{n}:\n" for n in range(300)),
                 "(yaml)", "nested deeper", id="block-nested-300-deep"),
    pytest.param("routing: " + "{a: " * 40000 + "}" * 40000, "(yaml)", "nested deeper",
                 id="nested-40000-deep"),
    pytest.param("routing:\n  queries:\n    query_failed:\n      channels: [" + "x" * 200_000
                 + "]\n", "routing.queries.query_failed.channels[0]", "Unknown channel",
                 id="huge-value"),
    pytest.param("routing:\n  " + "q" * 1000 + ":\n    a: 1\n", "routing.qqqq",
                 "unknown category", id="huge-key"),
]


@pytest.mark.parametrize(("text", "path", "problem"), HOSTILE_FILES)
def test_hostile_file_is_refused_briefly_and_changes_nothing(configured, text, path, problem):
    with pytest.raises(RoutingFileError) as caught:
        routing_import(text)

    assert caught.value.path.startswith(path)
    assert problem in str(caught.value)
    assert len(str(caught.value)) < 500  # quotes a short excerpt at most
    assert routing_state() == configured


@pytest.mark.parametrize(("text", "path", "problem"), HOSTILE_FILES)
def test_hostile_file_through_the_api_is_a_short_400(configured, staff_api, text, path,
                                                     problem):
    response = staff_api.post(IMPORT_URL, {"yaml": text}, format="json")

    assert response.status_code == 400
    assert problem in response.json()["yaml"][0]
    assert len(response.content) < 1000
    assert routing_state() == configured


def test_a_file_over_the_size_limit_is_refused_before_parsing(configured, staff_api, tmp_path):
    # Malformed from its first line, yet the size is what it is refused for.
    oversized = "routing: [\n" + "# padding\n" * 30_000

    with pytest.raises(RoutingFileError, match="larger than the limit of 256 KiB"):
        routing_import(oversized)
    with pytest.raises(CommandError, match="larger than the limit of 256 KiB"):
        import_file(tmp_path, oversized)
    as_json = staff_api.post(IMPORT_URL, {"yaml": oversized}, format="json")
    upload = SimpleUploadedFile("routing.yaml", oversized.encode())
    as_file = staff_api.post(IMPORT_URL, {"file": upload}, format="multipart")

    assert as_json.status_code == as_file.status_code == 400
    assert "256 KiB" in as_json.json()["yaml"][0]
    assert "256 KiB" in as_file.json()["file"][0]
    assert routing_state() == configured


def test_the_size_limit_is_a_setting(db, settings):
    settings.DATAFI_MAX_ROUTING_FILE_BYTES = len(SEED.encode()) - 1

    with pytest.raises(RoutingFileError, match="larger than the limit"):
        routing_import(SEED)
    settings.DATAFI_MAX_ROUTING_FILE_BYTES = len(SEED.encode())
    routing_import(SEED)


def test_a_file_that_is_not_utf8_is_a_clear_error(configured, staff_api, tmp_path):
    latin1 = SEED.replace("data_sources:", "data_sources:  # caf\xe9").encode("latin-1")
    path = tmp_path / "latin1.yaml"
    path.write_bytes(latin1)

    with pytest.raises(CommandError, match="not UTF-8 text") as caught:
        call_command("import_routing", str(path), stdout=io.StringIO())
    response = staff_api.post(IMPORT_URL, {"file": SimpleUploadedFile("r.yaml", latin1)},
                              format="multipart")

    assert "Nothing was changed" in str(caught.value)
    assert response.status_code == 400
    assert "not UTF-8 text" in response.json()["yaml"][0]
    assert routing_state() == configured


def test_an_unknown_field_in_the_api_import_is_a_400(configured, staff_api):
    response = staff_api.post(IMPORT_URL, {"yaml": SEED, "replce": True}, format="json")

    assert response.status_code == 400
    assert "unknown field" in response.json()["replce"][0]
    assert routing_state() == configured
