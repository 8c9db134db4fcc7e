"""What a browser is told: the Content-Security-Policy and Permissions-Policy on every
response, the endpoint that logs reported violations, and DATAFI_HTTPS behind a
TLS-terminating proxy (a real gunicorn, with the header a proxy sets), which leaves
``manage.py check --deploy`` nothing to report.

The policy holding in a browser (nothing refused on any page, a forced violation reported)
is tests/web/test_pages_browser.py.
"""

import json
import logging
import re
import secrets
import subprocess
import sys
from http.cookies import SimpleCookie

import pytest
import requests
from django.conf import global_settings

from config.security import CSP_REPORT_MAX_BYTES
from tests.support import HTTP_NOT_YET, ROOT, free_port, stop_tree, subprocess_env, wait_until

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
          "form-action 'self'; frame-ancestors 'none'; report-uri /csp-report/")
PERMISSIONS = ("accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
               "magnetometer=(), microphone=(), midi=(), payment=(), usb=()")
REPORT_URL = "/csp-report/"


# --- the headers --------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "status"), [
    ("/accounts/login/", 200),
    ("/notifications/", 302),
    ("/admin/login/", 200),
    ("/api/docs/", 200),
    ("/api/docs/?script", 200),
    ("/api/notifications/", 401),
    ("/static/web/app.css", 200),
    ("/priority-colors.css", 200),
    ("/no-such-page/", 404),
])
def test_every_response_carries_the_policies(client, db, path, status):
    response = client.get(path)

    assert response.status_code == status
    assert response["Content-Security-Policy"] == POLICY
    assert response["Permissions-Policy"] == PERMISSIONS
    assert "Strict-Transport-Security" not in response  # DATAFI_HTTPS is off here


def test_swagger_ui_has_no_inline_script_or_style(client, db):
    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script")

    assert re.findall(r"<script\b[^>]*>", page) == [
        f'<script src="{src}">' for src in re.findall(r'<script src="([^"]+)">', page)]
    assert len(re.findall(r"<script\b", page)) == 3  # the bundle, the preset, the start script
    assert '<script src="/api/docs/?script=">' in page
    assert "<style" not in page and "style=" not in page
    assert script["Content-Type"] == "application/javascript"
    assert "SwaggerUIBundle(" in script.content.decode()
    assert '"validatorUrl": null' in script.content.decode()  # no badge from elsewhere


INLINE = [
    (re.compile(r"""\bstyle=['"]"""), "a style attribute"),
    (re.compile(r"<style\b"), "a <style> element"),
    (re.compile(r"""<script\b(?![^>]*\bsrc=)(?![^>]*type=['"]application/json)"""),
     "an inline <script>"),
    (re.compile(r"""\son[a-z]+=['"]"""), "an event handler attribute"),
]


def test_no_page_template_or_admin_markup_has_what_the_csp_refuses():
    """What the browser tests do not open is checked here: every page template (emails are
    not pages: mail clients need inline styles) and the HTML the apps' Python makes."""
    sources = [p for base in ("templates", "operations/templates")
               for p in (ROOT / base).rglob("*.html") if "emails" not in p.parts]
    for app in ("config", "events", "notifications", "channels_app", "web", "operations"):
        sources += [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]
    found = [f"{path.relative_to(ROOT)}:{number}: {what}"
             for path in sources
             for number, line in enumerate(path.read_text().splitlines(), 1)
             for pattern, what in INLINE
             if pattern.search(line) and "{% comment %}" not in line]
    assert found == []


# --- the report endpoint ------------------------------------------------------------------

def violation_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "config.security" and r.levelno == logging.WARNING]


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.WARNING, logger="config.security")
    return lambda: violation_logs(caplog)


def test_a_report_uri_report_is_logged(client, db, logged):
    report = {"csp-report": {
        "document-uri": "https://datafi.example/notifications/", "referrer": "",
        "violated-directive": "script-src-elem", "effective-directive": "script-src-elem",
        "original-policy": POLICY, "disposition": "enforce", "blocked-uri": "inline",
        "source-file": "https://datafi.example/static/web/center.js", "line-number": 12,
        "column-number": 5, "status-code": 200, "script-sample": "alert(1)"}}

    response = client.post(REPORT_URL, json.dumps(report), content_type="application/csp-report")

    assert response.status_code == 204 and response.content == b""
    assert logged() == [
        "CSP violation: script-src-elem refused inline on https://datafi.example/notifications/"
        " (source https://datafi.example/static/web/center.js, line 12, sample alert(1))"]


def test_reporting_api_reports_are_logged_each(client, db, logged):
    reports = [
        {"type": "csp-violation", "age": 10, "url": "https://datafi.example/preferences/",
         "body": {"documentURL": "https://datafi.example/preferences/",
                  "effectiveDirective": "img-src", "blockedURL": "https://tracker.example/p.gif",
                  "disposition": "enforce", "statusCode": 200}},
        {"type": "deprecation", "body": {"id": "something"}},
        {"type": "csp-violation", "url": "https://datafi.example/admin/",
         "body": {"effectiveDirective": "style-src-attr", "blockedURL": "inline",
                  "sourceFile": "https://datafi.example/admin/", "lineNumber": 3}},
    ]

    response = client.post(REPORT_URL, json.dumps(reports),
                           content_type="application/reports+json")

    assert response.status_code == 204
    assert logged() == [
        "CSP violation: img-src refused https://tracker.example/p.gif on "
        "https://datafi.example/preferences/ (source null, line null, sample null)",
        "CSP violation: style-src-attr refused inline on https://datafi.example/admin/ "
        "(source https://datafi.example/admin/, line 3, sample null)"]


def test_a_report_cannot_write_lines_of_its_own_into_the_log(client, db, logged):
    report = {"csp-report": {"document-uri": "https://datafi.example/\nERROR forged line",
                             "effective-directive": "img-src", "blocked-uri": "x" * 5000}}

    assert client.post(REPORT_URL, json.dumps(report),
                       content_type="application/csp-report").status_code == 204

    [line] = logged()
    assert "\n" not in line and "https://datafi.example/ ERROR forged line" in line
    assert "x" * 300 in line and "x" * 301 not in line


def test_the_report_endpoint_needs_no_session_or_csrf_token(db, live_server, logged):
    report = {"csp-report": {"document-uri": f"{live_server.url}/", "blocked-uri": "eval",
                             "effective-directive": "script-src"}}

    response = requests.post(f"{live_server.url}{REPORT_URL}", data=json.dumps(report),
                             headers={"Content-Type": "application/csp-report"}, timeout=30)

    assert response.status_code == 204
    assert logged() == [f"CSP violation: script-src refused eval on {live_server.url}/ "
                        "(source null, line null, sample null)"]


def test_a_report_over_the_size_limit_is_refused_unread(client, db, logged):
    report = {"csp-report": {"document-uri": "https://datafi.example/",
                             "effective-directive": "img-src",
                             "script-sample": "x" * CSP_REPORT_MAX_BYTES}}

    response = client.post(REPORT_URL, json.dumps(report), content_type="application/csp-report")

    assert response.status_code == 413
    assert logged() == []


@pytest.mark.parametrize("body", ["not json", "[]", '{"csp-report": "no"}', '{"type": "x"}',
                                  '"text"', "\xff"])
def test_a_body_that_is_no_csp_report_is_a_400(client, db, logged, body):
    response = client.post(REPORT_URL, body.encode("latin-1"),
                           content_type="application/csp-report")

    assert response.status_code == 400
    assert logged() == []


def test_the_report_endpoint_takes_only_posts(client, db):
    assert client.get(REPORT_URL).status_code == 405


# --- behind a TLS-terminating proxy: DATAFI_HTTPS -------------------------------------------

def deploy_check(**env) -> list[str]:
    """The ids of what ``manage.py check --deploy`` reports, run as a deployment would."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=subprocess_env(**env), capture_output=True, text=True, timeout=300)
    issues = re.findall(r"^\S+: \((\w+\.\w+)\) ", result.stdout + result.stderr, re.MULTILINE)
    if not issues:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "System check identified no issues" in result.stdout
    return issues


def test_the_deploy_check_has_nothing_to_report_with_datafi_https():
    real = {"SECRET_KEY": secrets.token_urlsafe(50), "DEBUG": "false"}

    issues = deploy_check(DATAFI_HTTPS="true", **real)

    assert issues == []  # drf_spectacular's own check too: the schema has no warning
    assert set(deploy_check(DATAFI_HTTPS="false", **real)) >= {
        "security.W004", "security.W008", "security.W012", "security.W016"}


@pytest.fixture
def https_gunicorn(live_db):
    """The Procfile's web process (gunicorn) with DATAFI_HTTPS=true, as a TLS-terminating
    proxy would reach it over plain HTTP; stopped however the test ends."""
    port = free_port()
    env = subprocess_env(DATAFI_HTTPS="true", SECRET_KEY=secrets.token_urlsafe(50),
                         DEBUG="false")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/accounts/login/", timeout=10,
                                        allow_redirects=False),
                   timeout=120, ignore=HTTP_NOT_YET, message="gunicorn to answer")
        yield base, f"https://127.0.0.1:{port}"
    finally:
        stop_tree(process)


def set_cookies(response) -> dict[str, dict]:
    cookies = SimpleCookie()
    for header in response.raw.headers.getlist("Set-Cookie"):
        cookies.load(header)
    return {name: {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"])}
            for name, morsel in cookies.items()}


def test_behind_a_tls_proxy_https_is_required_and_remembered(https_gunicorn, make_user,
                                                             settings):
    plain, public = https_gunicorn
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # gunicorn checks with these
    make_user("alice")
    proxied = {"X-Forwarded-Proto": "https"}  # what the proxy adds to a request it decrypted

    # Plain HTTP that did not come through the proxy's TLS: sent to HTTPS.
    redirect = requests.get(f"{plain}/accounts/login/?next=/preferences/", timeout=30,
                            allow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"{public}/accounts/login/?next=/preferences/"

    # Through the proxy: HSTS, secure cookies, and the policy upgrades any http:// load.
    session = requests.Session()
    page = session.get(f"{plain}/accounts/login/", headers=proxied, timeout=30)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload")
    assert page.headers["Content-Security-Policy"] == POLICY.replace(
        "; report-uri", "; upgrade-insecure-requests; report-uri")
    assert set_cookies(page)["csrftoken"]["secure"]

    signed_in = session.post(
        f"{plain}/accounts/login/", timeout=30, allow_redirects=False,
        headers={**proxied, "Origin": public},
        cookies={"csrftoken": page.cookies["csrftoken"]},
        data={"username": "alice", "password": "pw",
              "csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                                               page.text).group(1)})
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert signed_in.headers["Location"] == "/notifications/"
    assert set_cookies(signed_in)["sessionid"] == {"secure": True, "httponly": True}
