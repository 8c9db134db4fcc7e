"""The bell in a real headless Chromium against the live server: a member signs in, a
critical event turns the badge red without a reload, reading follows the notification to
its payload, "Mark all as read" clears several, a digest expands to its events, and a
second user in another browser session sees none of it. Screenshots of the open dropdown
and the preferences page go to var/test/artifacts/.
"""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from events.catalog import Priority
from notifications.models import NotificationPreference
from notifications.services.digests import digest_flush
from tests.support import emit_and_route

from .browsing import bell, click, open_dropdown, read, sign_in, wait, wait_for_count

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CRITICAL_RED = "rgba(220, 38, 38, 1)"  # Priority.BADGE_COLORS["critical"], as the browser says


@pytest.fixture
def fast_bell(settings):
    settings.DATAFI_BELL_POLL_SECONDS = 0.5


def dropdown_titles(driver):
    def titles(d):
        return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#bell-list .bell-item-title")]

    return read(driver, titles)


def test_the_bell_live_in_a_browser(live_server, live_db, make_workspace, make_user, browser,
                                    fast_bell, artifacts_dir):
    alice, bob = make_user("alice"), make_user("bob")
    workspace = make_workspace("Analytics", users=[alice])
    make_workspace("Marketing", users=[bob])
    a = browser()
    sign_in(a, live_server, "alice")
    _, badge = bell(a)
    assert not badge.is_displayed() and a.title == "Notifications · Datafi"

    # A critical event: red badge with 1, tab title with the count, no reload.
    a.execute_script("window.__samePage = true")
    emit_and_route("data_source.connection_lost", workspace,
                   datasource_name="Production Snowflake", error="Connection timeout after 30s")
    badge = wait_for_count(a, 1, "the badge to show the critical event")
    assert badge.is_displayed() and badge.text == "1"
    assert badge.get_attribute("data-priority") == Priority.CRITICAL
    assert badge.value_of_css_property("background-color") == CRITICAL_RED
    assert a.title == "(1) Notifications · Datafi"
    assert a.execute_script("return window.__samePage") is True  # no reload happened

    # Open the dropdown, click the notification: its detail with every payload field.
    open_dropdown(a)
    wait(a, lambda d: dropdown_titles(d) == ["Connection lost: Production Snowflake"],
         "the notification in the dropdown")

    def first_item(d):
        item = d.find_element(By.CSS_SELECTOR, "#bell-list .bell-item")
        where = item.find_element(By.CSS_SELECTOR, ".bell-item-meta .workspace")
        return item.get_attribute("class").split(), where.text, where.get_attribute("title")

    classes, workspace_name, workspace_hover = read(a, first_item)
    assert "unread" in classes
    # The workspace by its name, its id on hover.
    assert (workspace_name, workspace_hover) == ("Analytics", workspace.public_id)
    click(a, "#bell-list .bell-item a", "a click on the notification")
    wait(a, EC.text_to_be_present_in_element((By.ID, "detail-title"),
                                             "Connection lost: Production Snowflake"),
         "the detail page")
    fields = {dt.text: dd.text for dt, dd in zip(
        a.find_elements(By.CSS_SELECTOR, "#payload dt"),
        a.find_elements(By.CSS_SELECTOR, "#payload dd"), strict=True)}
    assert fields == {"datasource_name": "Production Snowflake",
                      "error": "Connection timeout after 30s"}
    assert a.find_element(By.ID, "detail-event-type").text == "data_source.connection_lost"
    assert a.find_element(By.ID, "detail-workspace").text == "Analytics"
    assert a.find_element(By.ID, "detail-occurred").text
    badge = wait_for_count(a, 0, "the count to drop to 0")
    assert not badge.is_displayed() and a.title == "Connection lost: Production Snowflake · Datafi"

    # Several notifications, one a digest of two medium events.
    emit_and_route("query.long_running_query", workspace, query_name="Nightly revenue")
    emit_and_route("query.long_running_query", workspace, query_name="Churn model")
    digest_flush(bucket="5m")
    emit_and_route("query.query_failed", workspace, query_name="Daily KPIs")
    emit_and_route("policy.violation_detected", workspace, policy_name="PII export")
    badge = wait_for_count(a, 3, "three unread: a digest, a high and a critical")
    assert badge.get_attribute("data-priority") == Priority.CRITICAL
    open_dropdown(a)
    wait(a, lambda d: len(dropdown_titles(d)) == 4, "four notifications in the dropdown")
    assert dropdown_titles(a)[:3] == ["Policy violation: PII export", "Query failed: Daily KPIs",
                                      "2 medium notifications"]

    def opened_digest(d):
        """The digest unfolded (again, if a poll re-rendered it folded): its summary, its
        events' titles and workspaces; None until they show."""
        digest = d.find_element(By.CSS_SELECTOR, "#bell-list .bell-item[data-kind=digest]")
        details = digest.find_element(By.CSS_SELECTOR, "details.digest")
        summary = details.find_element(By.CSS_SELECTOR, "summary")
        if details.get_attribute("open") is None:
            summary.click()
        titles = [e.text for e in details.find_elements(By.CSS_SELECTOR, ".digest-item-title")]
        places = {e.text for e in details.find_elements(By.CSS_SELECTOR, ".workspace")}
        return all(titles) and titles and (summary.text, titles, places)

    summary, titles, places = wait(a, opened_digest, "the digest's events")
    assert summary == "2 events"
    assert titles == ["Long-running query: Nightly revenue", "Long-running query: Churn model"]
    assert places == {"Analytics"}
    a.save_screenshot(str(artifacts_dir / "bell-dropdown.png"))

    a.find_element(By.ID, "bell-mark-all").click()
    badge = wait_for_count(a, 0, "Mark all as read to clear the badge")
    assert not badge.is_displayed() and a.title == "Connection lost: Production Snowflake · Datafi"
    wait(a, lambda d: not d.find_elements(By.CSS_SELECTOR, "#bell-list .bell-item.unread"),
         "the dropdown to show them read")

    # Another user, in another browser session, sees none of them.
    b = browser()
    sign_in(b, live_server, "bob")
    wait_for_count(b, 0, "bob's empty bell")
    open_dropdown(b)
    wait(b, EC.visibility_of_element_located((By.ID, "bell-empty")), "bob's empty dropdown")
    assert dropdown_titles(b) == []
    wait(b, lambda d: d.find_element(By.ID, "center-empty").is_displayed(), "bob's empty list")
    assert b.find_elements(By.CSS_SELECTOR, "#center-rows tr") == []
    alices = alice.notifications.first()
    b.get(f"{live_server.url}/notifications/{alices.pk}/")
    wait(b, EC.text_to_be_present_in_element((By.ID, "detail"), "Not found"),
         "someone else's notification to be not found")
    assert "PII" not in b.page_source and "Snowflake" not in b.page_source

    # Preferences: the locked note, and a toggle that saves through the API.
    a.get(f"{live_server.url}/preferences/")
    wait(a, lambda d: d.find_element(By.ID, "prefs-table").get_attribute("data-loaded"),
         "the preferences")
    assert "Critical events are always delivered" in a.find_element(By.ID, "critical-note").text
    a.find_element(By.CSS_SELECTOR, "tr[data-category=queries] input[name='queries.email']"
                   ).click()
    wait(a, EC.text_to_be_present_in_element((By.ID, "prefs-status"), "Saved"),
         "the preference to be saved")
    assert list(NotificationPreference.objects.filter(user=alice).values_list(
        "category__slug", "channel", "enabled")) == [("queries", "email", False)]
    a.save_screenshot(str(artifacts_dir / "preferences.png"))


def test_the_notification_center_filters_pages_and_marks_several_read(
        live_server, live_db, make_workspace, make_user, browser, fast_bell):
    alice = make_user("alice")
    workspace = make_workspace("Analytics", users=[alice])
    for n in range(23):
        emit_and_route("query.query_failed", workspace, query_name=f"Q{n:02d}")
    emit_and_route("data_source.connection_lost", workspace, datasource_name="Warehouse")
    a = browser()
    sign_in(a, live_server, "alice")

    def titles():
        return [e.text for e in a.find_elements(By.CSS_SELECTOR, "#center-rows .row-title")]

    wait(a, lambda d: len(titles()) == 20, "the first page")
    assert read(a, lambda d: titles())[:2] == ["Connection lost: Warehouse", "Query failed: Q22"]
    a.find_element(By.ID, "page-older").click()
    wait(a, lambda d: titles() == [f"Query failed: Q0{n}" for n in (3, 2, 1, 0)],
         "the older page")
    a.find_element(By.ID, "page-newer").click()
    wait(a, lambda d: len(titles()) == 20, "back to the first page")

    # Filter: critical only.
    a.find_element(By.CSS_SELECTOR, "#filter-priority option[value=critical]").click()
    wait(a, lambda d: titles() == ["Connection lost: Warehouse"], "the critical filter")
    assert "priority=critical" in a.current_url

    # Back to all, select two rows and mark them read.
    a.find_element(By.CSS_SELECTOR, "#filter-priority option[value='']").click()
    wait(a, lambda d: len(titles()) == 20, "the unfiltered list")
    boxes = a.find_elements(By.CSS_SELECTOR, "#center-rows input[type=checkbox]")
    boxes[1].click()
    boxes[2].click()
    a.find_element(By.ID, "mark-selected").click()
    wait_for_count(a, 22, "two fewer unread")
    assert set(alice.notifications.filter(read_at__isnull=False).values_list(
        "title", flat=True)) == {"Query failed: Q22", "Query failed: Q21"}
    a.find_element(By.CSS_SELECTOR, "#filters select[name=unread] option[value=true]").click()
    wait(a, lambda d: "Query failed: Q22" not in titles() and len(titles()) == 20,
         "the unread filter")
