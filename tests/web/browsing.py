"""What the browser tests share: waiting on a page that polls, signing in, and the two checks
every page gets: axe-core finds no accessibility violation, and Chromium refused nothing
under the Content-Security-Policy.
"""

import base64
import functools
import hashlib
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import WAIT_SECONDS

#: axe-core 4.14.1, vendored unchanged from the npm package (tests/web/vendor/README.md).
AXE_PATH = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_SHA256 = "KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="  # its sri-history.json

#: Runs every rule axe-core runs by default (WCAG 2.0/2.1/2.2 A and AA, and its best
#: practices) on the whole page as it is now; answers one entry per violation.
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ["violations"] }).then(
  (results) => done(results.violations.map((violation) => ({
    id: violation.id, impact: violation.impact, help: violation.help,
    nodes: violation.nodes.map((node) => node.target.join(" ") + ": " + node.failureSummary),
  }))),
  (error) => done([{ id: "axe-error", impact: "", help: String(error), nodes: [] }]));
"""


def wait(driver, condition, message):
    """Wait for ``condition``; a list re-rendered while it was read is "not yet"."""
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)
                         ).until(condition, message)


def read(driver, fn):
    """``fn(driver)``, done again when a poll re-rendered what it was reading (stale)."""
    return wait(driver, lambda d: (fn(d),), f"a stable read of {fn.__name__}")[0]


def bell(driver):
    """The bell's button and its badge."""
    return driver.find_element(By.ID, "bell-button"), driver.find_element(By.ID, "bell-badge")


def wait_for_count(driver, count, message):
    """Wait until the bell says ``count`` unread; its badge."""
    label = f"Notifications: {count} unread"
    wait(driver, lambda d: bell(d)[0].get_attribute("aria-label") == label, message)
    return bell(driver)[1]


def open_dropdown(driver):
    button, _ = bell(driver)
    if button.get_attribute("aria-expanded") != "true":
        button.click()
    wait(driver, EC.visibility_of_element_located((By.ID, "bell-panel")), "the dropdown")
    assert button.get_attribute("aria-expanded") == "true"


def click(driver, selector, message):
    """Click the element ``selector`` finds, found again if a poll re-rendered it."""
    def clicked(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    wait(driver, clicked, message)


def sign_in(driver, live_server, username):
    """Sign in on the app's sign-in page; wait for the center and the bell's first poll."""
    driver.get(f"{live_server.url}/accounts/login/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys("pw")
    driver.find_element(By.ID, "sign-in").click()
    wait(driver, EC.url_to_be(f"{live_server.url}/notifications/"), "the notification center")
    wait(driver, lambda d: d.find_element(By.ID, "bell-button").get_attribute("data-count"),
         "the bell's first poll")


@functools.cache
def axe_source() -> str:
    source = AXE_PATH.read_bytes()
    digest = base64.b64encode(hashlib.sha256(source).digest()).decode()
    assert digest == AXE_SHA256, f"{AXE_PATH} is not axe-core 4.14.1 (see vendor/README.md)"
    return source.decode()


def axe_violations(driver) -> list[str]:
    """What axe-core finds on the page as it is shown now, one line per element."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(axe_source())
    found = []
    for violation in driver.execute_async_script(AXE_RUN):
        found.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        found.extend(f"    {node}" for node in violation["nodes"])
    return found


def assert_accessible(driver, what: str) -> None:
    violations = axe_violations(driver)
    assert not violations, f"axe-core on {what}:\n" + "\n".join(violations)


def refused(driver) -> list[str]:
    """Chromium's console messages since the last call about what a policy refused
    (Content-Security-Policy, Permissions-Policy), and errors of the pages' scripts (but
    not the admin's missing /favicon.ico, which Chromium asks for by itself).

    The console is kept across pages (``goog:loggingPrefs``, see conftest), so one call
    after visiting several pages sees them all."""
    return [entry["message"] for entry in driver.get_log("browser")
            if (entry["level"] == "SEVERE" or "Policy" in entry["message"])
            and "/favicon.ico - Failed to load resource" not in entry["message"]]
