"""Real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium.

Without them the browser tests skip with the reason (``bin/test`` lists it); with
DATAFI_REQUIRE_SERVICES=1 (CI) the skip is a failure, and ``.ci/run`` installs them.
"""

import shutil
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
WAIT_SECONDS = 60  # generous: the machine is often loaded


@pytest.fixture
def artifacts_dir() -> Path:
    """Screenshots are kept here (``var/test/artifacts/`` under ``bin/test``)."""
    path = Path(settings.VAR_DIR) / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(tmp_path):
    """``browser()`` opens one more independent headless Chromium session (own profile,
    own cookies, its console kept for ``browsing.refused``); every one is quit at teardown,
    however the test ends."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("browser test: needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="browser test: needs selenium (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def open_browser():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        profile = tmp_path / f"chromium-profile-{len(drivers)}"
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         "--window-size=1280,900", f"--user-data-dir={profile}",
                         "--lang=en-US"):  # one locale: time inputs read 10:30 PM
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        drivers.append(driver)
        driver.set_page_load_timeout(WAIT_SECONDS)
        driver.set_script_timeout(WAIT_SECONDS)
        return driver

    yield open_browser
    for driver in drivers:
        driver.quit()
