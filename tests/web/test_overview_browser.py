"""The admin's Overview in a real headless Chromium: its SVG charts drawn, axe-core finds no
accessibility violation, the Content-Security-Policy refuses nothing; screenshots of both
ranges go to var/test/artifacts/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from events.models import Event
from notifications.models import Delivery, Notification
from notifications.services.digests import digest_flush
from operations.rollups import overview_rollup
from tests.support import emit_and_route

from .browsing import assert_accessible, refused, wait

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def a_day_of_traffic(live_db, make_workspace, make_user):
    """Events of every priority spread over the last 30 hours, some emails delivered a few
    seconds to minutes after emit, one failed; digests flushed; rolled up."""
    root = make_user("root", superuser=True)
    workspace = make_workspace("Analytics", users=[root], members=4)
    now = timezone.now()
    kinds = ["data_source.connection_lost", "query.query_failed", "query.long_running_query",
             "policy.policy_created", "data_source.connection_established"]
    for hours_ago in range(0, 30, 2):
        at = now - timedelta(hours=hours_ago)
        events = [emit_and_route(kinds[(hours_ago + i) % 5], workspace, datasource_name="db",
                                 query_name="q", policy_name="p") for i in range(1 + hours_ago % 4)]
        Event.objects.filter(pk__in=[e.pk for e in events]).update(created_at=at)
        Notification.objects.filter(event__in=events).update(created_at=at + timedelta(
            milliseconds=40 + hours_ago * 10))
        for n, delivery in enumerate(Delivery.objects.filter(event__in=events, channel="email")):
            Delivery.objects.filter(pk=delivery.pk).update(
                status="failed" if n == 3 else "delivered",
                delivered_at=at + timedelta(seconds=2 + n * 20 + hours_ago))
    for bucket in ("5m", "15m", "1h"):
        digest_flush(bucket=bucket)
    overview_rollup(now=now)
    return root


def test_the_overview_draws_its_charts_and_passes_axe_and_the_csp(
        live_server, a_day_of_traffic, browser, artifacts_dir):
    a = browser()
    a.set_window_size(1280, 2400)  # the whole page in each screenshot
    a.get(f"{live_server.url}/admin/login/")
    a.find_element(By.ID, "id_username").send_keys("root")
    a.find_element(By.ID, "id_password").send_keys("pw")
    a.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(a, EC.url_to_be(f"{live_server.url}/admin/"), "the admin's index")
    a.find_element(By.LINK_TEXT, "Overview").click()

    for range_name, label in (("24h", "Last 24 hours"), ("7d", "Last 7 days")):
        if range_name != "24h":
            a.find_element(By.LINK_TEXT, label).click()
        current = f".overview-ranges a[aria-current=page][href='?range={range_name}']"
        wait(a, EC.presence_of_element_located((By.CSS_SELECTOR, current)), f"the {label} view")
        charts = a.find_elements(By.CSS_SELECTOR, "svg.chart[role=img]")
        assert len(charts) == 10
        events = a.find_element(By.CSS_SELECTOR, "#events svg")
        bars = events.find_elements(By.CSS_SELECTOR, "rect.bar")
        assert len(bars) >= 15
        # Colored by the stylesheets (no style attribute anywhere): the priority palette.
        critical = events.find_element(By.CSS_SELECTOR, "rect[data-priority=critical]")
        assert critical.value_of_css_property("fill") not in ("", "none", "rgb(0, 0, 0)")
        email_latency = a.find_element(By.CSS_SELECTOR, "#latency-email svg")
        assert email_latency.find_elements(By.CSS_SELECTOR, "polyline.line")
        assert "p99" in email_latency.find_element(By.TAG_NAME, "desc").get_attribute(
            "textContent")
        assert_accessible(a, f"the Overview, {label}")
        a.save_screenshot(str(artifacts_dir / f"overview-{range_name}.png"))

    assert refused(a) == []
