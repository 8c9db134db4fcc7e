"""Incidents in a real headless Chromium against the live server: Acknowledge from the bell
and another user's bell (another browser session) shows "Acknowledged by ..." after its
next poll, the keyboard kept in the list; Resolve from the center (after its confirmation)
shows "Resolved" and takes the buttons away; an escalated event shows "Escalated" in the
bell, the center and its detail page, where it is acknowledged and resolved too; the
states' times on the user's clock. axe-core finds nothing with each state showing and the
CSP refuses nothing. Screenshots go to var/test/artifacts/.
"""

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from events.models import Event, EventType
from notifications.models import Escalation, Notification, RoutingRule
from notifications.services.attention import notification_settings_set
from notifications.services.digests import digest_flush
from notifications.services.incidents import escalations_send
from tests.support import api_client_for, emit_and_route

from .browsing import (
    assert_accessible,
    click,
    open_dropdown,
    read,
    refused,
    sign_in,
    wait,
    wait_for_count,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOST = "data_source.connection_lost"


@pytest.fixture
def fast_bell(settings):
    settings.DATAFI_BELL_POLL_SECONDS = 0.5


def text_of(driver, selector):
    return read(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).text)


def present(driver, selector) -> bool:
    return bool(read(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector)))


def press(driver, selector, key):
    """Send ``key`` to the element ``selector`` finds (found again after a re-render)."""
    def pressed(d):
        d.find_element(By.CSS_SELECTOR, selector).send_keys(key)
        return True

    wait(driver, pressed, f"{key!r} on {selector}")


def focus_key(driver):
    return driver.switch_to.active_element.get_attribute("data-focus-key")


def wait_for_state(driver, selector, state, text, message):
    """Wait until ``selector``'s ``state`` badge shows and starts with ``text``; its text."""
    badge = f"{selector} .incident-state[data-state={state}]"
    wait(driver, lambda d: any(e.text.startswith(text)
                               for e in d.find_elements(By.CSS_SELECTOR, badge)), message)
    return text_of(driver, badge)


def test_acknowledged_in_one_bell_shows_in_another_users_bell(
        live_server, live_db, make_workspace, make_user, browser, fast_bell, artifacts_dir):
    alice, bob = make_user("alice"), make_user("bob")
    workspace = make_workspace("Ops", users=[alice, bob])
    event = emit_and_route(LOST, workspace, datasource_name="Warehouse")
    emit_and_route("query.long_running_query", workspace, query_name="Nightly revenue")
    digest_flush(bucket="5m")
    alices = Notification.objects.get(user=alice, event=event)
    bobs = Notification.objects.get(user=bob, event=event)
    a, b = browser(), browser()
    sign_in(a, live_server, "alice")
    sign_in(b, live_server, "bob")
    for driver in (a, b):
        wait_for_count(driver, 2, "the critical event and the digest")
        open_dropdown(driver)
        wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bell-list .bell-item")) == 2,
             "both in the dropdown")

    # A digest mixes events: nothing to acknowledge or resolve there.
    digest = "#bell-list .bell-item[data-kind=digest]"
    assert not present(a, f"{digest} [data-action=acknowledge]")
    assert not present(a, f"{digest} [data-action=resolve]")
    mine, theirs = (f"#bell-list .bell-item[data-id='{n.pk}']" for n in (alices, bobs))
    assert read(a, lambda d: d.find_element(By.CSS_SELECTOR, f"{mine} [data-action=acknowledge]")
                .accessible_name) == "Acknowledge: Connection lost: Warehouse"
    assert not present(a, f"{mine} .incident-state")

    # bob's keyboard is on his Acknowledge button when alice acknowledges.
    wait(b, lambda d: d.execute_script(
        "const b = document.querySelector(arguments[0]); b.focus();"
        "return document.activeElement === b", f"{theirs} [data-action=acknowledge]"),
        "bob's keyboard on his Acknowledge")

    # alice, by keyboard: Enter on Acknowledge.
    press(a, f"{mine} [data-action=acknowledge]", Keys.ENTER)
    state = wait_for_state(a, mine, "acknowledged", "Acknowledged by alice",
                           "alice's row to say she acknowledged it")
    assert not present(a, f"{mine} [data-action=acknowledge]")
    assert focus_key(a) == f"{alices.pk}:resolve"  # the keyboard stays in the row
    assert "is acknowledged by alice" in text_of(a, "#bell-notice")
    wait_for_count(a, 1, "her copy read: only the digest unread")
    assert "Acknowledged by alice" in state

    # bob's bell follows on its next poll, his copy still unread; his keyboard stays on
    # the notification whose button went away.
    wait_for_state(b, theirs, "acknowledged", "Acknowledged by alice",
                   "bob's bell to say alice acknowledged it")
    assert not present(b, f"{theirs} [data-action=acknowledge]")
    assert present(b, f"{theirs}.unread")
    assert focus_key(b) == f"{bobs.pk}:open"
    wait_for_count(b, 2, "bob's count unchanged")
    event.refresh_from_db()
    assert (event.acknowledged_by, event.acknowledged_by_name) == (alice, "alice")
    assert_accessible(b, "the bell open, an acknowledged notification")
    b.save_screenshot(str(artifacts_dir / "bell-acknowledged.png"))

    # Resolve from the bell (a confirmation first; Escape takes it back).
    press(b, f"{theirs} [data-action=resolve]", Keys.ENTER)
    wait(b, EC.visibility_of_element_located((By.CSS_SELECTOR, f"{theirs} .resolve-menu")),
         "the resolve confirmation")
    assert read(b, lambda d: d.find_element(By.CSS_SELECTOR, f"{theirs} [data-action=resolve]")
                .get_attribute("aria-expanded")) == "true"
    assert_accessible(b, "the bell open, a resolve confirmation open")
    b.save_screenshot(str(artifacts_dir / "bell-resolve.png"))
    press(b, f"{theirs} [data-action=resolve-confirm]", Keys.ESCAPE)
    wait(b, EC.invisibility_of_element_located((By.CSS_SELECTOR, f"{theirs} .resolve-menu")),
         "Escape to take the confirmation back")
    assert b.find_element(By.ID, "bell-panel").is_displayed()
    assert focus_key(b) == f"{bobs.pk}:resolve"
    event.refresh_from_db()
    assert event.resolved_at is None
    press(b, f"{theirs} [data-action=resolve]", Keys.ENTER)
    press(b, f"{theirs} [data-action=resolve-confirm]", Keys.ENTER)
    wait_for_state(b, theirs, "resolved", "Resolved", "bob's row to say resolved")
    assert "Resolved “Connection lost: Warehouse” for everyone" in text_of(b, "#bell-notice")
    assert not present(b, f"{theirs} [data-action=resolve]")
    assert focus_key(b) == f"{bobs.pk}:open"
    wait_for_state(a, mine, "resolved", "Resolved", "alice's bell to say resolved")
    assert not present(a, f"{mine} [data-action=resolve]")
    event.refresh_from_db()
    assert event.resolved_by == bob
    assert_accessible(a, "the bell open, an acknowledged and resolved notification")
    assert refused(a) == []
    assert refused(b) == []


@pytest.fixture
def incidents(live_db, make_workspace, make_user):
    """alice, bob and alice's notifications (her clock in New York): an escalated critical
    event, one bob acknowledged, and a high one nobody touched."""
    alice, bob = make_user("alice"), make_user("bob")
    workspace = make_workspace("Ops", users=[alice, bob])
    notification_settings_set(user=alice, timezone_name="America/New_York")
    RoutingRule.objects.create(
        event_type=EventType.objects.get(key=LOST), channels=["in_app"],
        escalate={"after_minutes": 15, "channels": ["email"], "emails": []})
    escalated = emit_and_route(LOST, workspace, datasource_name="Warehouse")
    acknowledged = emit_and_route(LOST, workspace, datasource_name="Lake")
    untouched = emit_and_route("query.query_failed", workspace, query_name="Daily KPIs")
    assert api_client_for(bob).post(
        f"/api/notifications/{Notification.objects.get(user=bob, event=acknowledged).pk}"
        "/acknowledge/").status_code == 200
    due = Escalation.objects.get(event=escalated).due_at
    assert escalations_send(now=due + timedelta(seconds=1)) == 1
    return alice, bob, {name: Notification.objects.get(user=alice, event=event) for name, event in
                   (("escalated", escalated), ("acknowledged", acknowledged),
                    ("untouched", untouched))}


def test_resolve_from_the_center_and_every_state_at_a_glance(
        live_server, incidents, browser, fast_bell, artifacts_dir):
    alice, _, mine = incidents
    a = browser()
    a.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    sign_in(a, live_server, "alice")
    row = {name: f"#center-rows tr[data-id='{n.pk}']" for name, n in mine.items()}
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#center-rows tr")) == 3,
         "alice's three notifications")

    # Escalated and not acknowledged: the badge, and Acknowledge still offered.
    state = wait_for_state(a, row["escalated"], "escalated", "Escalated ", "the escalated one")
    assert present(a, f"{row['escalated']} [data-action=acknowledge]")
    hover = read(a, lambda d: d.find_element(
        By.CSS_SELECTOR, f"{row['escalated']} [data-state=escalated] time").get_attribute("title"))
    assert hover.endswith("(America/New_York)")  # on alice's clock, not the browser's
    # Acknowledged by bob: the badge says who, and no Acknowledge button.
    state = wait_for_state(a, row["acknowledged"], "acknowledged", "Acknowledged by bob ",
                           "the one bob acknowledged")
    assert not present(a, f"{row['acknowledged']} [data-action=acknowledge]")
    assert present(a, f"{row['acknowledged']} [data-action=resolve]")
    assert not present(a, f"{row['untouched']} .incident-state")

    # Resolve the untouched one from the center: a confirmation, then the state.
    click(a, f"{row['untouched']} [data-action=resolve]", "Resolve")
    wait(a, EC.visibility_of_element_located(
        (By.CSS_SELECTOR, f"{row['untouched']} [data-action=resolve-confirm]")), "its confirmation")
    assert read(a, lambda d: d.find_element(
        By.CSS_SELECTOR, f"{row['untouched']} .resolve-menu").accessible_name) == \
        "Resolve Query failed: Daily KPIs"
    click(a, f"{row['untouched']} [data-action=resolve-confirm]", "Resolve for everyone")
    state = wait_for_state(a, row["untouched"], "resolved", "Resolved ", "the resolved state")
    assert not present(a, f"{row['untouched']} [data-action=acknowledge]")
    assert not present(a, f"{row['untouched']} [data-action=resolve]")
    assert text_of(a, "#center-status") == \
        "Resolved “Query failed: Daily KPIs” for everyone it went to."
    event = Event.objects.get(pk=mine["untouched"].event_id)
    assert (event.resolved_by, event.resolved_at is not None) == (alice, True)
    assert state.startswith("Resolved ")
    assert_accessible(a, "the center with escalated, acknowledged and resolved notifications")
    a.save_screenshot(str(artifacts_dir / "center-incident-states.png"))

    # The bell shows the same states.
    open_dropdown(a)
    item = {name: f"#bell-list .bell-item[data-id='{n.pk}']" for name, n in mine.items()}
    wait_for_state(a, item["escalated"], "escalated", "Escalated ", "the bell's escalated one")
    wait_for_state(a, item["acknowledged"], "acknowledged", "Acknowledged by bob ",
                   "the bell's acknowledged one")
    wait_for_state(a, item["untouched"], "resolved", "Resolved ", "the bell's resolved one")
    assert_accessible(a, "the bell open, every state")
    a.find_element(By.ID, "bell-button").click()

    # The escalated one's detail page: acknowledge it there, then resolve it.
    a.get(f"{live_server.url}/notifications/{mine['escalated'].pk}/")
    escalated = wait_for_state(a, "#detail-states", "escalated", "Escalated · ",
                               "the detail page's state")
    assert "(America/New_York)" in escalated and escalated.endswith(")")
    click(a, "#detail-incident [data-action=acknowledge]", "Acknowledge on the detail page")
    wait_for_state(a, "#detail-states", "acknowledged", "Acknowledged by alice · ",
                   "acknowledged on the detail page")
    assert not present(a, "#detail-incident [data-action=acknowledge]")
    assert "is acknowledged by alice" in text_of(a, "#detail-status")
    assert focus_key(a) == f"{mine['escalated'].pk}:resolve"
    click(a, "#detail-incident [data-action=resolve]", "Resolve on the detail page")
    click(a, "#detail-incident [data-action=resolve-confirm]", "Resolve for everyone")
    wait_for_state(a, "#detail-states", "resolved", "Resolved · ", "resolved on the detail page")
    assert not present(a, "#detail-incident button")
    assert [e.get_attribute("data-state") for e in a.find_elements(
        By.CSS_SELECTOR, "#detail-states .incident-state")] == [
        "escalated", "acknowledged", "resolved"]  # in the order they happened
    assert focus_key(a) == f"{mine['escalated'].pk}:open"
    assert_accessible(a, "a resolved notification's detail page")
    a.save_screenshot(str(artifacts_dir / "detail-resolved.png"))
    assert refused(a) == []


def test_the_detail_page_follows_what_others_do(live_server, incidents, browser, fast_bell):
    _, bob, mine = incidents
    a = browser()
    sign_in(a, live_server, "alice")
    a.get(f"{live_server.url}/notifications/{mine['untouched'].pk}/")
    wait(a, EC.presence_of_element_located(
        (By.CSS_SELECTOR, "#detail-incident [data-action=acknowledge]")), "Acknowledge")
    assert not present(a, "#detail-states")

    bobs = Notification.objects.get(user=bob, event_id=mine["untouched"].event_id)
    assert api_client_for(bob).post(f"/api/notifications/{bobs.pk}/acknowledge/").status_code \
        == 200
    wait_for_state(a, "#detail-states", "acknowledged", "Acknowledged by bob · ",
                   "bob's acknowledgement, without a reload")
    assert not present(a, "#detail-incident [data-action=acknowledge]")
    assert_accessible(a, "a detail page someone else acknowledged")
    assert refused(a) == []
