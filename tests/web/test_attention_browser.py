"""Attention controls in a real headless Chromium against the live server: snooze from the
bell (1 hour, tomorrow 9:00 in the user's own time zone) and the count drops at once; the
center's "Snoozed" view brings one back; "Mute this kind" in the bell, listed and removed on
the preferences page, and a mute added there; the time zone and quiet hours saved, and a
refusal shown next to its field; a grouped notification's "× N" in the bell, the center and
its detail page. axe-core finds nothing on any of those views and the CSP refuses nothing.
"Tomorrow 9:00" is checked against zoneinfo across daylight-saving changes in the browser.
Screenshots go to var/test/artifacts/.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from events.models import EventType
from notifications.models import Mute, UserNotificationSettings
from notifications.services.attention import notification_settings_set
from tests.support import emit_and_route

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

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def fast_bell(settings):
    settings.DATAFI_BELL_POLL_SECONDS = 0.5


def bell_ids(driver):
    def ids(d):
        return [int(e.get_attribute("data-id"))
                for e in d.find_elements(By.CSS_SELECTOR, "#bell-list .bell-item")]

    return read(driver, ids)


def center_titles(driver):
    def titles(d):
        return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#center-rows .row-title")]

    return read(driver, titles)


def text_of(driver, selector):
    return read(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).text)


def nine_tomorrow_in(zone, now):
    """9:00 tomorrow on ``zone``'s clocks, seen from ``now`` (zoneinfo's answer)."""
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(9), tzinfo=zone)


def test_snooze_from_the_bell_then_unsnooze_from_the_center(
        live_server, live_db, make_workspace, make_user, browser, fast_bell, artifacts_dir):
    alice = make_user("alice")
    workspace = make_workspace("Analytics", users=[alice])
    notification_settings_set(user=alice, timezone_name="America/New_York")
    emit_and_route("query.query_failed", workspace, query_name="Daily KPIs")
    emit_and_route("query.query_failed", workspace, query_name="Churn model")
    emit_and_route("policy.violation_detected", workspace, policy_name="PII export")
    daily, churn, violation = alice.notifications.order_by("id")
    a = browser()
    sign_in(a, live_server, "alice")
    wait_for_count(a, 3, "three unread")
    open_dropdown(a)
    wait(a, lambda d: len(bell_ids(d)) == 3, "the three notifications in the dropdown")

    # Critical events are never muted: that row offers a snooze, not "Mute this kind".
    row = f"#bell-list .bell-item[data-id='{violation.pk}']"
    assert read(a, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} [data-action=mute]")) == []
    assert read(a, lambda d: d.find_element(By.CSS_SELECTOR, f"{row} .snooze-button")
                .accessible_name) == "Snooze: Policy violation: PII export"

    # By keyboard: Enter on "Snooze" shows the presets, Escape hides them (the panel stays).
    row = f"#bell-list .bell-item[data-id='{daily.pk}']"

    def press(selector, key):
        def pressed(d):
            d.find_element(By.CSS_SELECTOR, selector).send_keys(key)
            return True

        wait(a, pressed, f"{key!r} on {selector}")

    press(f"{row} .snooze-button", Keys.ENTER)
    wait(a, EC.visibility_of_element_located((By.CSS_SELECTOR, f"{row} .snooze-menu")),
         "the snooze presets")
    wait(a, lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, f"{row} .snooze-choice")]
         == ["1 hour", "Tomorrow 9:00 (America/New_York)"], "the presets, in alice's zone")
    assert read(a, lambda d: d.find_element(By.CSS_SELECTOR, f"{row} .snooze-button")
                .get_attribute("aria-expanded")) == "true"
    assert_accessible(a, "the bell open, a snooze menu open")
    a.save_screenshot(str(artifacts_dir / "bell-snooze.png"))
    press(f"{row} .snooze-choice[data-preset=hour]", Keys.ESCAPE)
    wait(a, EC.invisibility_of_element_located((By.CSS_SELECTOR, f"{row} .snooze-menu")),
         "Escape to hide the presets")
    assert a.find_element(By.ID, "bell-panel").is_displayed()
    assert a.switch_to.active_element.get_attribute("aria-expanded") == "false"  # back on it

    # 1 hour: gone from the bell and out of the count at once.
    before = timezone.now()
    press(f"{row} .snooze-button", Keys.ENTER)
    press(f"{row} .snooze-choice[data-preset=hour]", Keys.ENTER)
    wait_for_count(a, 2, "the count to drop by the snoozed one")
    wait(a, lambda d: daily.pk not in bell_ids(d), "the snoozed one to leave the dropdown")
    assert "Snoozed “Query failed: Daily KPIs” until" in text_of(a, "#bell-notice")
    daily.refresh_from_db()
    assert before + timedelta(hours=1) <= daily.snoozed_until <= timezone.now() + timedelta(hours=1)

    # Tomorrow 9:00 on alice's clocks (New York), whatever the browser's zone.
    before = nine_tomorrow_in(NEW_YORK, timezone.now())
    row = f"#bell-list .bell-item[data-id='{churn.pk}']"
    click(a, f"{row} .snooze-button", "Snooze on the second one")
    click(a, f"{row} .snooze-choice[data-preset=tomorrow]", "Tomorrow 9:00")
    wait_for_count(a, 1, "the count to drop again")
    after = nine_tomorrow_in(NEW_YORK, timezone.now())
    churn.refresh_from_db()
    assert churn.snoozed_until in (before, after)
    wait(a, lambda d: bell_ids(d) == [violation.pk], "only the critical one in the dropdown")

    # The center's "Snoozed" view lists both, with when each comes back; unsnooze one.
    click(a, "#view-snoozed", "the Snoozed view")
    wait(a, lambda d: sorted(center_titles(d)) == ["Query failed: Churn model",
                                                   "Query failed: Daily KPIs"],
         "the snoozed ones in the Snoozed view")
    assert a.find_element(By.ID, "view-snoozed").get_attribute("aria-current") == "page"
    assert text_of(a, "#center-heading") == "Snoozed notifications"
    assert text_of(a, f"#center-rows tr[data-id='{daily.pk}'] .snoozed-until").startswith("Until ")
    assert_accessible(a, "the center's Snoozed view")
    a.save_screenshot(str(artifacts_dir / "center-snoozed.png"))
    click(a, f"#center-rows tr[data-id='{daily.pk}'] [data-action=unsnooze]", "Unsnooze")
    wait_for_count(a, 2, "the unsnoozed one back in the count")
    wait(a, lambda d: center_titles(d) == ["Query failed: Churn model"],
         "the Snoozed view without it")
    assert "back in your notifications, unread" in text_of(a, "#center-status")
    daily.refresh_from_db()
    assert (daily.snoozed_until, daily.read_at) == (None, None)

    click(a, "#view-inbox", "the notifications view")
    wait(a, lambda d: center_titles(d) == ["Policy violation: PII export",
                                           "Query failed: Daily KPIs"],
         "the inbox with the unsnoozed one and without the snoozed one")
    assert refused(a) == []


def test_mute_this_kind_from_the_bell_then_remove_it_on_the_preferences_page(
        live_server, live_db, make_workspace, make_user, browser, fast_bell, artifacts_dir):
    alice = make_user("alice")
    workspace = make_workspace("Analytics", users=[alice])
    notification_settings_set(user=alice, timezone_name="Europe/Paris",
                              quiet_hours={"start": "22:00", "end": "07:00"})
    emit_and_route("query.query_failed", workspace, query_name="Daily KPIs")
    a = browser()
    sign_in(a, live_server, "alice")
    wait_for_count(a, 1, "one unread")
    open_dropdown(a)
    click(a, "#bell-list .bell-item [data-action=mute]", "Mute this kind")
    wait(a, EC.text_to_be_present_in_element((By.ID, "bell-notice"), "Muted “Query failed”"),
         "the mute to be confirmed")
    wait(a, EC.text_to_be_present_in_element(
        (By.CSS_SELECTOR, "#bell-list .bell-item [data-action=mute]"), "Unmute this kind"),
         "the row's button to unmute now")
    [mute] = Mute.objects.filter(user=alice)
    assert (mute.event_type.key, mute.until) == ("query.query_failed", None)

    # Muted: a new query failure reaches alice nowhere; a model error still does.
    emit_and_route("query.query_failed", workspace, query_name="Churn model")
    emit_and_route("ai_ml.model_error", workspace, model_name="Forecast")
    wait_for_count(a, 2, "the model error, and only it")
    assert not alice.notifications.filter(title="Query failed: Churn model").exists()

    # Listed on the preferences page (the notice links there), with Remove.
    click(a, "#bell-notice a", "the link to your mutes")
    wait(a, lambda d: d.find_element(By.ID, "mutes-table").get_attribute("data-loaded"),
         "the mutes")

    def mutes(d):
        return [(r.find_element(By.CSS_SELECTOR, ".mute-name").text,
                 r.find_element(By.CSS_SELECTOR, ".mute-until").text)
                for r in d.find_elements(By.CSS_SELECTOR, "#mutes-rows tr")]

    assert read(a, mutes) == [("Query failed", "Until you remove it")]
    assert "Critical events are never muted" in a.find_element(By.ID, "mutes-critical-note").text
    assert "Critical events are never held" in a.find_element(By.ID, "quiet-critical-note").text

    # Add one: the workspace, for a day.
    Select(a.find_element(By.ID, "mute-what")).select_by_visible_text(
        "Analytics: every event in it")
    Select(a.find_element(By.ID, "mute-for")).select_by_visible_text("1 day")
    before = timezone.now()
    a.find_element(By.ID, "mute-add").click()
    wait(a, lambda d: len(mutes(d)) == 2, "the new mute in the list")
    assert text_of(a, "#mutes-status").startswith("Muted Analytics until ")
    added = Mute.objects.get(user=alice, workspace=workspace)
    assert before + timedelta(days=1) - timedelta(minutes=1) <= added.until \
        <= timezone.now() + timedelta(days=1)
    assert read(a, mutes)[0][0] == "Analytics"
    wait(a, lambda d: d.find_element(By.ID, "quiet-on").is_selected(), "the quiet hours")
    assert_accessible(a, "the preferences page with quiet hours and mutes")
    a.save_screenshot(str(artifacts_dir / "preferences-mutes.png"))

    # Remove the event type's mute: gone from the page and the database.
    click(a, f"#mutes-rows tr[data-id='{mute.pk}'] [data-action=remove]", "Remove")
    wait(a, lambda d: [name for name, _ in mutes(d)] == ["Analytics"], "the mute removed")
    assert text_of(a, "#mutes-status") == "Removed: Query failed reaches you again."
    assert list(Mute.objects.filter(user=alice)) == [added]
    # The bell on this page follows: the query failure's row offers "Mute this kind" again.
    open_dropdown(a)
    daily = alice.notifications.get(title="Query failed: Daily KPIs")
    wait(a, EC.text_to_be_present_in_element(
        (By.CSS_SELECTOR, f"#bell-list .bell-item[data-id='{daily.pk}'] [data-action=mute]"),
        "Mute this kind"), "the query failure's mute button")
    assert read(a, lambda d: d.find_element(
        By.CSS_SELECTOR, f"#bell-list .bell-item[data-id='{daily.pk}'] [data-action=mute]")
        .accessible_name) == "Mute this kind: Query failed"
    assert refused(a) == []


def test_time_zone_and_quiet_hours_are_saved_and_a_refusal_shows_by_its_field(
        live_server, live_db, make_user, browser, artifacts_dir):
    alice = make_user("alice")
    a = browser()
    a.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    sign_in(a, live_server, "alice")
    a.get(f"{live_server.url}/preferences/")
    wait(a, lambda d: d.find_element(By.ID, "quiet-form").get_attribute("data-loaded"),
         "the quiet hours form")
    zone = Select(a.find_element(By.ID, "timezone"))
    assert zone.first_selected_option.text == "UTC"  # nothing stored yet
    assert not a.find_element(By.ID, "quiet-on").is_selected()
    assert not a.find_element(By.ID, "quiet-start").is_enabled()

    # The browser's zone is offered; quiet hours on, 10:30 PM to 7:00 AM, typed.
    offer = a.find_element(By.ID, "use-browser-zone")
    assert offer.text == "Use this browser's time zone (Asia/Tokyo)"
    offer.click()
    assert zone.first_selected_option.text == "Asia/Tokyo"
    assert not offer.is_displayed()
    a.find_element(By.ID, "quiet-on").click()

    def type_time(input_id, keys):
        field = a.find_element(By.ID, input_id)
        a.execute_script("arguments[0].blur()", field)  # typing starts at the hours
        field.send_keys(keys)

    type_time("quiet-start", "1030PM")
    type_time("quiet-end", "0700AM")
    a.find_element(By.ID, "quiet-save").click()
    wait(a, EC.text_to_be_present_in_element((By.ID, "quiet-status"), "Saved"), "saved")
    assert text_of(a, "#quiet-status") == "Saved: quiet hours 22:30 to 07:00, Asia/Tokyo."
    stored = UserNotificationSettings.objects.get(user=alice)
    assert (stored.timezone, stored.quiet_start, stored.quiet_end) == (
        "Asia/Tokyo", time(22, 30), time(7, 0))

    # Another zone from the list, kept after a reload.
    Select(a.find_element(By.ID, "timezone")).select_by_visible_text("Europe/Lisbon")
    a.find_element(By.ID, "quiet-save").click()
    wait(a, EC.text_to_be_present_in_element((By.ID, "quiet-status"), "Europe/Lisbon"),
         "the new zone saved")
    a.refresh()
    wait(a, lambda d: d.find_element(By.ID, "quiet-form").get_attribute("data-loaded"),
         "the form again")
    assert Select(a.find_element(By.ID, "timezone")).first_selected_option.text == \
        "Europe/Lisbon"
    assert a.find_element(By.ID, "quiet-on").is_selected()
    assert [a.find_element(By.ID, i).get_attribute("value") for i in ("quiet-start",
                                                                      "quiet-end")] \
        == ["22:30", "07:00"]
    assert text_of(a, "#quiet-zone") == "(Europe/Lisbon)"

    # Ending when they start is refused: the message by the quiet hours, nothing saved.
    assert refused(a) == []
    type_time("quiet-end", "1030PM")
    a.find_element(By.ID, "quiet-save").click()
    wait(a, lambda d: d.find_element(By.ID, "quiet-hours-error").is_displayed(),
         "the refusal's message")
    assert text_of(a, "#quiet-hours-error") == \
        "Quiet hours must end at another time than they start."
    assert a.find_element(By.ID, "quiet-start").get_attribute("aria-invalid") == "true"
    assert text_of(a, "#quiet-status") == "Not saved: see the message above."
    stored.refresh_from_db()
    assert (stored.timezone, stored.quiet_end) == ("Europe/Lisbon", time(7, 0))
    [console] = refused(a)  # the API's 400, and nothing the CSP refused
    assert "/api/preferences/" in console and "400 (Bad Request)" in console
    assert_accessible(a, "the preferences page with a refused quiet hours")
    a.save_screenshot(str(artifacts_dir / "preferences-quiet-hours.png"))

    # A time left empty is refused by the page, by its field, before asking the API.
    field = a.find_element(By.ID, "quiet-start")
    a.execute_script("arguments[0].blur()", field)
    field.send_keys(Keys.BACKSPACE)
    a.find_element(By.ID, "quiet-save").click()
    wait(a, lambda d: d.find_element(By.ID, "quiet-start-error").is_displayed(),
         "the empty start's message")
    assert text_of(a, "#quiet-start-error") == "Give the time quiet hours start."
    assert not a.find_element(By.ID, "quiet-hours-error").is_displayed()

    # Off: saved as none.
    a.find_element(By.ID, "quiet-on").click()
    a.find_element(By.ID, "quiet-save").click()
    wait(a, EC.text_to_be_present_in_element((By.ID, "quiet-status"), "no quiet hours"),
         "quiet hours off")
    stored.refresh_from_db()
    assert (stored.quiet_start, stored.quiet_end) == (None, None)
    assert refused(a) == []


def test_a_grouped_notification_shows_how_often_it_happened(
        live_server, live_db, make_workspace, make_user, browser, fast_bell, artifacts_dir):
    alice = make_user("alice")
    workspace = make_workspace("Analytics", users=[alice])
    EventType.objects.filter(key="data_source.connection_lost").update(
        group_by=["datasource_name"])
    for _ in range(3):
        emit_and_route("data_source.connection_lost", workspace, datasource_name="Warehouse")
    [notification] = alice.notifications.all()
    assert notification.repeat_count == 2
    a = browser()
    sign_in(a, live_server, "alice")
    cell = f"#center-rows tr[data-id='{notification.pk}']"
    wait(a, lambda d: d.find_elements(By.CSS_SELECTOR, f"{cell} .repeat-count"), "the repeats")
    assert text_of(a, f"{cell} .repeat-count") == "× 3"
    assert "3 occurrences" in read(a, lambda d: d.find_element(
        By.CSS_SELECTOR, f"{cell} .repeat").get_attribute("textContent"))
    assert "· last " in text_of(a, f"{cell} .repeat")

    # Another repeat: the bell shows it without a reload.
    open_dropdown(a)
    item = f"#bell-list .bell-item[data-id='{notification.pk}']"
    wait(a, EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"{item} .repeat-count"),
                                             "× 3"), "the bell's count of occurrences")
    emit_and_route("data_source.connection_lost", workspace, datasource_name="Warehouse")
    wait(a, EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"{item} .repeat-count"),
                                             "× 4"), "the bell to count the new repeat")
    assert_accessible(a, "the bell open, a grouped notification")
    a.save_screenshot(str(artifacts_dir / "bell-repeats.png"))

    notification.refresh_from_db()
    a.get(f"{live_server.url}/notifications/{notification.pk}/")
    wait(a, EC.presence_of_element_located((By.ID, "detail-repeats")), "the detail page")
    repeats = text_of(a, "#detail-repeats")
    assert repeats.startswith("× 4 (the first and 3 repeats); last ")
    assert notification.last_occurred_at is not None
    assert_accessible(a, "a grouped notification's detail page")
    assert refused(a) == []


#: (zone, now): tomorrow is a day the clocks change, or "today" there is already another day
#: than in UTC, or the zone's offset is not whole hours.
TOMORROW_CASES = [
    ("Europe/Paris", "2026-03-28T12:00:00Z"),  # tomorrow springs forward: +02:00
    ("Europe/Paris", "2026-10-24T12:00:00Z"),  # tomorrow falls back: +01:00
    ("America/New_York", "2026-03-07T23:30:00Z"),  # 18:30 on the 7th there; DST on the 8th
    ("America/New_York", "2026-11-01T03:30:00Z"),  # 23:30 on Oct 31 there; EST on Nov 1
    ("Asia/Tokyo", "2026-03-28T20:00:00Z"),  # already the 29th there: the 30th
    ("Australia/Lord_Howe", "2026-04-04T12:00:00Z"),  # half-hour DST ends on the 5th
    ("Asia/Kathmandu", "2026-06-01T00:00:00Z"),  # +05:45
    ("Pacific/Chatham", "2026-04-04T12:00:00Z"),  # +13:45 to +12:45
    ("America/Santiago", "2026-04-04T12:00:00Z"),  # DST ends at midnight, southern autumn
    ("UTC", "2026-12-31T23:59:00Z"),  # tomorrow is next year
]

#: A wall time the clocks skip is the moment of the change; one they repeat, its first time
#: (as the server ends quiet hours).
WALL_CASES = [
    ("Europe/Paris", (2026, 3, 29, 2, 30), "2026-03-29T03:00:00+02:00"),
    ("Europe/Paris", (2026, 10, 25, 2, 30), "2026-10-25T02:30:00+02:00"),
    ("America/New_York", (2026, 3, 8, 2, 30), "2026-03-08T03:00:00-04:00"),
    ("America/New_York", (2026, 11, 1, 1, 30), "2026-11-01T01:30:00-04:00"),
]

IN_THE_BROWSER = """
const [tomorrowCases, wallCases, done] = arguments;
import("/static/web/attention.js").then((m) => done({
  tomorrow: tomorrowCases.map(([zone, now]) => m.tomorrowAt(zone, 9, Date.parse(now)).iso),
  wall: wallCases.map(([zone, [year, month, day, hour, minute]]) =>
    m.isoInZone(m.zonedInstant(zone, { year, month, day, hour, minute }), zone)),
}), (error) => done({ error: String(error) }));
"""


def test_tomorrow_nine_is_right_across_daylight_saving_changes(live_server, live_db, browser):
    a = browser()
    a.get(f"{live_server.url}/accounts/login/")
    answer = a.execute_async_script(IN_THE_BROWSER, TOMORROW_CASES, WALL_CASES)

    assert "error" not in answer, answer
    expected = [nine_tomorrow_in(ZoneInfo(zone), datetime.fromisoformat(now).astimezone(UTC))
                .isoformat() for zone, now in TOMORROW_CASES]
    assert answer["tomorrow"] == expected
    assert answer["wall"] == [iso for _, _, iso in WALL_CASES]
    assert refused(a) == []

