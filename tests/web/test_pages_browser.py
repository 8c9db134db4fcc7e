"""Every page in a real headless Chromium, under the real Content-Security-Policy: axe-core
(vendored, tests/web/vendor/) finds no accessibility violation on the app's pages, with
badges of all five priorities showing, and Chromium refuses nothing on them, nor on the
admin's pages, DRF's browsable API and Swagger UI at /api/docs/. A violation forced into a
page is refused and reported to /csp-report/, which logs it. Screenshots go to
var/test/artifacts/.
"""

import logging

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from events.catalog import Priority
from events.models import EventType
from notifications.models import Notification
from notifications.services.digests import digest_flush
from tests.support import emit_and_route, wait_until

from .browsing import assert_accessible, read, refused, sign_in, wait

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rgb(color: str) -> str:
    """``#c2410c`` as the browser reports a computed color: ``rgba(194, 65, 12, 1)``."""
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, 1)"


@pytest.fixture
def fast_bell(settings):
    settings.DATAFI_BELL_POLL_SECONDS = 0.5


@pytest.fixture
def every_priority(live_db, make_workspace, make_user):
    """alice with a notification of each priority: critical and high at once, medium, low and
    info as digests (one per bucket); the high one read."""
    alice = make_user("alice")
    workspace = make_workspace("Analytics", users=[alice])
    emit_and_route("data_source.connection_lost", workspace, datasource_name="Warehouse",
                   error="Connection timeout after 30s")
    emit_and_route("query.query_failed", workspace, query_name="Daily KPIs")
    emit_and_route("query.long_running_query", workspace, query_name="Nightly revenue")
    emit_and_route("policy.policy_created", workspace, policy_name="PII export")
    emit_and_route("data_source.connection_established", workspace, datasource_name="Lake")
    for bucket in ("5m", "15m", "1h"):
        digest_flush(bucket=bucket)
    alice.notifications.filter(priority=Priority.HIGH).update(read_at=timezone.now())
    assert sorted(alice.notifications.values_list("priority", flat=True)) == sorted(
        Priority.VALUES)
    return alice


def badge_colors(driver, selector):
    def colors(d):
        return {e.get_attribute("data-priority"): e.value_of_css_property("background-color")
                for e in d.find_elements(By.CSS_SELECTOR, selector)}

    return read(driver, colors)


def test_the_apps_pages_pass_axe_and_the_csp(live_server, every_priority, browser, fast_bell,
                                              artifacts_dir):
    palette = {priority: rgb(color) for priority, color in Priority.BADGE_COLORS.items()}
    a = browser()

    # The sign-in page, signed out.
    a.get(f"{live_server.url}/accounts/login/")
    assert_accessible(a, "the sign-in page")

    # The home page (the notification center) with the bell closed: every priority's badge.
    sign_in(a, live_server, "alice")
    a.get(f"{live_server.url}/")
    wait(a, EC.url_to_be(f"{live_server.url}/notifications/"), "the home page")
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#center-rows tr")) == 5,
         "the five notifications")
    assert badge_colors(a, "#center-rows .priority") == palette
    assert a.find_element(By.ID, "bell-badge").value_of_css_property(
        "background-color") == palette["critical"]
    assert_accessible(a, "the home page, bell closed")
    a.save_screenshot(str(artifacts_dir / "a11y-home.png"))

    # The bell open, a digest unfolded.
    a.find_element(By.ID, "bell-button").click()
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bell-list .bell-item")) == 5,
         "the dropdown's five notifications")
    a.find_element(By.CSS_SELECTOR, "#bell-list .bell-item[data-kind=digest] summary").click()
    wait(a, EC.visibility_of_element_located((By.CSS_SELECTOR, "#bell-list .digest-items li")),
         "the digest's events")
    assert badge_colors(a, "#bell-list .bell-item-link .priority") == palette
    assert_accessible(a, "the home page, bell open")
    a.save_screenshot(str(artifacts_dir / "a11y-bell-open.png"))
    a.find_element(By.ID, "bell-button").click()

    # The center with filters applied: unread, then a priority.
    Select(a.find_element(By.CSS_SELECTOR, "#filters select[name=unread]")).select_by_value(
        "true")
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#center-rows tr")) == 4,
         "the unread filter")
    Select(a.find_element(By.ID, "filter-priority")).select_by_value("critical")
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#center-rows tr")) == 1,
         "the critical filter")
    assert "unread=true" in a.current_url and "priority=critical" in a.current_url
    assert_accessible(a, "the notification center, filtered")

    # A notification's detail page, and a digest's.
    critical = every_priority.notifications.get(priority=Priority.CRITICAL)
    a.get(f"{live_server.url}/notifications/{critical.pk}/")
    wait(a, EC.text_to_be_present_in_element((By.ID, "detail-title"), "Warehouse"),
         "the detail page")
    assert_accessible(a, "a notification's detail page")
    a.save_screenshot(str(artifacts_dir / "a11y-detail.png"))
    digest = every_priority.notifications.get(kind=Notification.Kind.DIGEST,
                                              priority=Priority.MEDIUM)
    a.get(f"{live_server.url}/notifications/{digest.pk}/")
    wait(a, EC.visibility_of_element_located((By.CSS_SELECTOR, "#detail .digest-items li")),
         "the digest's detail page")
    assert_accessible(a, "a digest's detail page")

    # The preferences page.
    a.get(f"{live_server.url}/preferences/")
    wait(a, lambda d: d.find_element(By.ID, "prefs-table").get_attribute("data-loaded"),
         "the preferences")
    assert_accessible(a, "the preferences page")
    a.save_screenshot(str(artifacts_dir / "a11y-preferences.png"))

    assert refused(a) == []


def test_the_admin_and_the_api_docs_work_under_the_csp(live_server, live_db, make_user,
                                                       make_workspace, browser, artifacts_dir):
    root = make_user("root", superuser=True)
    workspace = make_workspace("Analytics", users=[root])
    emit_and_route("data_source.connection_lost", workspace, datasource_name="Warehouse")
    event_type = EventType.objects.get(key="data_source.connection_lost")
    a = browser()
    a.get(f"{live_server.url}/admin/login/")
    a.find_element(By.ID, "id_username").send_keys("root")
    a.find_element(By.ID, "id_password").send_keys("pw")
    a.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(a, EC.url_to_be(f"{live_server.url}/admin/"), "the admin's index")

    # The catalog's priority badges: the palette's colors, from a stylesheet.
    a.get(f"{live_server.url}/admin/events/eventtype/")
    colors = badge_colors(a, ".priority-badge")
    assert colors == {priority: rgb(color) for priority, color in Priority.BADGE_COLORS.items()}

    # django-celery-beat's periodic task form: its script, now a static file, still runs.
    nightly = CrontabSchedule.objects.create(minute="0", hour="4")
    a.get(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")
    Select(a.find_element(By.ID, "id_crontab")).select_by_value(str(nightly.pk))
    wait(a, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".field-crontab .help"),
                                             "Translation:"), "the crontab in words")

    for path in ["/admin/notifications/notification/", "/admin/notifications/digest/",
                 "/admin/notifications/routingrule/", "/admin/channels_app/emailsettings/",
                 "/admin/channels_app/webhookendpoint/add/",
                 reverse("admin:events_eventtype_change", args=[event_type.pk]),
                 "/admin/auth/user/"]:
        a.get(f"{live_server.url}{path}")
        wait(a, EC.presence_of_element_located((By.ID, "content")), path)
        assert a.find_element(By.CSS_SELECTOR, "link[href='/priority-colors.css']")

    # DRF's browsable API, as a signed-in browser sees an endpoint (and its forms).
    for path in ["/api/event-types/", "/api/notifications/", "/api/preferences/",
                 "/api/webhook-endpoints/", "/api/email-settings/"]:
        a.get(f"{live_server.url}{path}")
        wait(a, EC.presence_of_element_located((By.CSS_SELECTOR, ".response-info")), path)

    # Swagger UI: its operations listed from the schema, nothing refused.
    a.get(f"{live_server.url}/api/docs/")
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 20,
         "Swagger UI's list of operations")
    assert a.find_element(By.CSS_SELECTOR, ".opblock-summary-path[data-path='/api/events/']")
    a.save_screenshot(str(artifacts_dir / "api-docs.png"))

    assert refused(a) == []


def test_a_refused_script_is_reported_and_logged(live_server, live_db, browser, caplog):
    caplog.set_level(logging.WARNING, logger="config.security")
    a = browser()
    a.get(f"{live_server.url}/accounts/login/")
    a.execute_script("""
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.append(script);""")
    assert a.execute_script("return window.injected") is None

    def reported():
        return [r.getMessage() for r in caplog.records if "CSP violation" in r.getMessage()]

    [message] = wait_until(reported, message="the violation's report")
    assert message.startswith("CSP violation: script-src-elem refused inline on "
                              f"{live_server.url}/accounts/login/")
    assert any("Content Security Policy" in line for line in refused(a))
