"""Escalation, resolution and inhibit rules as settings: in routing files (exported and
imported again without change), and in the admin."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from core.errors import ApplicationError
from events.models import EventType
from notifications.models import Escalation, InhibitRule, RoutingRule
from notifications.routing.files import RoutingFileError, routing_export, routing_import
from tests.support import api_client_for, emit_and_route

LOST = "data_source.connection_lost"

INCIDENTS = """\
routing:
  data_sources:
    connection_lost:
      channels: [in_app]
      escalate: {after_minutes: 15, channels: [email], emails: [oncall@example.com]}
      notify_resolved: true
    connection_established:
      resolves: [data_source.connection_lost]
  queries:
    query_failed:
      channels: [in_app, email]
      escalate: {after_minutes: 30, channels: [webhook]}
inhibit:
  - source_event_type: data_source.connection_lost
    target_categories: [queries]
    equal: [datasource_name]
    comment: queries fail while their data source is down
"""


def test_a_routing_file_sets_escalation_resolution_and_inhibit_rules(db):
    result = routing_import(INCIDENTS)

    assert (result.rules_changed, result.inhibit_rules_changed) == (2, 1)
    rule = RoutingRule.objects.get(event_type__key=LOST)
    assert rule.escalate == {"after_minutes": 15, "channels": ["email"],
                             "emails": ["oncall@example.com"]}
    assert rule.notify_resolved is True
    inhibit = InhibitRule.objects.get()
    assert (inhibit.source_event_type.key, inhibit.target_categories, inhibit.equal) == (
        LOST, ["queries"], ["datasource_name"])


def test_an_exported_file_imports_again_without_change(db):
    routing_import(INCIDENTS)
    rule_updated = RoutingRule.objects.get(event_type__key=LOST).updated_at
    inhibit_id = InhibitRule.objects.get().pk
    exported = routing_export()
    assert "escalate: {after_minutes: 15, channels: [email], emails: [oncall@example.com]}" \
        in exported or "after_minutes: 15" in exported
    assert "inhibit:" in exported

    for replace in (False, True):
        again = routing_import(exported, replace=replace)
        assert (again.rules_changed, again.priorities_changed, again.grouping_changed,
                again.inhibit_rules_changed, again.removed) == (0, 0, 0, 0, 0)
    assert routing_export() == exported
    assert RoutingRule.objects.get(event_type__key=LOST).updated_at == rule_updated
    assert InhibitRule.objects.get().pk == inhibit_id


def test_the_built_in_resolution_stays_when_a_file_replaces_everything(db):
    routing_import("routing: {}\n", replace=True)

    assert EventType.objects.get(key="data_source.connection_established").resolves == [LOST]
    assert EventType.objects.get(key=LOST).group_by == ["datasource_name"]
    assert "resolves" not in routing_export()


def test_replacing_without_inhibit_rules_removes_them_and_a_plain_import_keeps_them(db):
    routing_import(INCIDENTS)
    routing_import("routing:\n  queries:\n    channels: [in_app]\n")
    assert InhibitRule.objects.count() == 1

    result = routing_import("routing:\n  queries:\n    channels: [in_app]\n", replace=True)

    assert not InhibitRule.objects.exists() and result.removed >= 1


@pytest.mark.parametrize(("change", "path"), [
    ("escalate: {after_minutes: 0, channels: [email]}",
     "routing.data_sources.connection_lost.escalate"),
    ("escalate: {after_minutes: 5, channels: [in_app]}",
     "routing.data_sources.connection_lost.escalate"),
    ("escalate: [email]", "routing.data_sources.connection_lost.escalate"),
    ("notify_resolved: maybe", "routing.data_sources.connection_lost.notify_resolved"),
    ("resolves: [nope]", "routing.data_sources.connection_lost.resolves"),
])
def test_a_bad_incident_setting_is_refused_with_its_path(db, change, path):
    text = f"routing:\n  data_sources:\n    connection_lost:\n      channels: [in_app]\n" \
           f"      {change}\n"

    with pytest.raises(RoutingFileError) as refused:
        routing_import(text)

    assert refused.value.path == path
    assert RoutingRule.objects.count() == 0


@pytest.mark.parametrize(("inhibit", "path"), [
    ("inhibit: {source_event_type: x}", "inhibit"),
    ("inhibit:\n  - {target_categories: [queries]}", "inhibit[0].source_event_type"),
    ("inhibit:\n  - {source_event_type: nope.nope, target_categories: [queries]}",
     "inhibit[0].source_event_type"),
    (f"inhibit:\n  - {{source_event_type: {LOST}, target_categories: [nope]}}",
     "inhibit[0].target_categories"),
    (f"inhibit:\n  - {{source_event_type: {LOST}, target_categories: [queries], x: 1}}",
     "inhibit[0].x"),
])
def test_a_bad_inhibit_rule_in_a_file_is_refused_with_its_path(db, inhibit, path):
    with pytest.raises(RoutingFileError) as refused:
        routing_import(f"routing:\n  queries:\n    channels: [in_app]\n{inhibit}\n")

    assert refused.value.path == path
    assert not InhibitRule.objects.exists() and not RoutingRule.objects.exists()


def test_importing_inhibit_rules_needs_their_permissions(db, make_user):
    importer = make_user("importer", staff=True)
    importer.user_permissions.set(Permission.objects.filter(codename__in=[
        "add_routingrule", "change_routingrule", "delete_routingrule", "change_eventtype",
        "view_routingrule"]))
    api = api_client_for(importer)

    refused = api.post("/api/routing/import/", {"yaml": INCIDENTS}, format="json")
    assert refused.status_code == 400 and "inhibit" in str(refused.json())
    assert not InhibitRule.objects.exists() and not RoutingRule.objects.exists()
    plain = INCIDENTS.split("inhibit:")[0]
    assert api.post("/api/routing/import/", {"yaml": plain}, format="json").status_code == 200


# --- the admin ------------------------------------------------------------------------------

@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_the_admin_adds_an_inhibit_rule_through_the_service(admin_client, staff):
    answer = admin_client.post(reverse("admin:notifications_inhibitrule_add"), {
        "source_event_type": EventType.objects.get(key=LOST).pk,
        "target_event_types": ["query.query_failed"], "equal": "datasource_name",
        "comment": "outage noise"})

    assert answer.status_code == 302, answer.content[:2000]
    rule = InhibitRule.objects.get()
    assert (rule.target_event_types, rule.equal, rule.created_by) == (
        ["query.query_failed"], ["datasource_name"], staff)
    listed = admin_client.get(reverse("admin:notifications_inhibitrule_changelist"))
    assert b"data_source.connection_lost inhibits query.query_failed" in listed.content


def test_the_admin_refuses_an_inhibit_rule_without_targets(admin_client):
    admin_client.post(reverse("admin:notifications_inhibitrule_add"), {
        "source_event_type": EventType.objects.get(key=LOST).pk, "comment": "x"}, follow=True)

    assert not InhibitRule.objects.exists()


def test_the_admin_sets_a_rules_escalation(admin_client):
    answer = admin_client.post(reverse("admin:notifications_routingrule_add"), {
        "event_type": EventType.objects.get(key=LOST).pk, "channels": ["in_app"],
        "escalate_after_minutes": "10", "escalate_channels": ["email"],
        "escalate_emails": "oncall@example.com", "notify_resolved": "on"})

    assert answer.status_code == 302, answer.content[:3000]
    rule = RoutingRule.objects.get()
    assert rule.escalate == {"after_minutes": 10, "channels": ["email"],
                             "emails": ["oncall@example.com"]}
    assert rule.notify_resolved
    page = admin_client.get(reverse("admin:notifications_routingrule_change", args=[rule.pk]))
    assert b'name="escalate_after_minutes" value="10"' in page.content


def test_the_event_log_resolves_selected_events_and_shows_their_state(
        admin_client, make_workspace):
    team = make_workspace("Ops", members=1)
    RoutingRule.objects.create(event_type=EventType.objects.get(key=LOST), channels=["in_app"],
                               escalate={"after_minutes": 5, "channels": ["email"],
                                         "emails": []})
    event = emit_and_route(LOST, team, datasource_name="Warehouse")

    answer = admin_client.post(reverse("admin:events_event_changelist"), {
        "action": "resolve_selected", "_selected_action": [str(event.pk)]}, follow=True)

    assert b"1 events resolved" in answer.content
    event.refresh_from_db()
    assert event.resolved_at is not None
    assert Escalation.objects.get().status == "cancelled"
    listed = admin_client.get(reverse("admin:events_event_changelist"))
    assert b"resolved" in listed.content
    escalations = admin_client.get(reverse("admin:notifications_escalation_changelist"))
    assert escalations.status_code == 200 and b"cancelled" in escalations.content


def test_unknown_inhibit_targets_are_refused_by_the_service(db):
    from notifications.services.incidents import inhibit_rule_save

    with pytest.raises(ApplicationError) as refused:
        inhibit_rule_save(values={"source_event_type": LOST, "target_event_types": ["a.b"]})
    assert refused.value.field == "target_event_types"


def test_the_admins_delete_selected_goes_through_the_service(admin_client):
    """The list's "Delete selected" deletes each row through its service
    (``core.admin.ServiceDeletes``)."""
    for n, key in enumerate(("query.query_failed", "query.long_running_query")):
        InhibitRule.objects.create(source_event_type=EventType.objects.get(key=LOST),
                                   target_event_types=[key], comment=str(n))
    answer = admin_client.post(reverse("admin:notifications_inhibitrule_changelist"), {
        "action": "delete_selected", "post": "yes",
        "_selected_action": [str(pk) for pk in InhibitRule.objects.values_list("pk", flat=True)]},
        follow=True)

    assert answer.status_code == 200
    assert not InhibitRule.objects.exists()
