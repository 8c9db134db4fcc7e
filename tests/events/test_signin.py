"""The sign-in limit (events.signin) on every way to sign in: the token endpoint, the app's
sign-in page and the admin's, with counters shared between them in the real cache."""

import re
import subprocess
import sys
import time

import pytest
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.test import Client
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.test import APIClient

from config.admin import DatafiAdminSite
from events import signin
from events.api.serializers import SigninTokenSerializer
from events.forms import SigninLimitMixin
from tests.channels_app.smtp_servers import ClosedPort
from tests.support import ROOT, subprocess_env

ADDRESS = "203.0.113.7"
REFUSED = re.compile(r"Too many sign-in attempts; try again in (\d+) seconds?\.")


class Way:
    """One way to sign in: ``attempt(username, password, address)`` from a fresh client."""

    def __init__(self, name, url, *, signed_in_status, wrong_status):
        self.name, self.url = name, url
        self.signed_in_status, self.wrong_status = signed_in_status, wrong_status

    def attempt(self, username, password, address=ADDRESS, **headers):
        client = APIClient() if self.name == "token" else Client()
        return client.post(self.url, {"username": username, "password": password},
                           REMOTE_ADDR=address, **headers)

    def __repr__(self):
        return self.name


WAYS = [
    Way("token", "/api/auth/token/", signed_in_status=200, wrong_status=400),
    Way("app", "/accounts/login/", signed_in_status=302, wrong_status=200),
    Way("admin", "/admin/login/", signed_in_status=302, wrong_status=200),
]


@pytest.fixture(autouse=True)
def ten_a_minute(settings):
    settings.DATAFI_SIGNIN_THROTTLE_RATE = "10/min"


@pytest.fixture
def root(make_user):
    """A superuser (the admin signs in staff only), password "pw"."""
    return make_user("root", superuser=True)


def assert_refused(response) -> int:
    """The 429 of the limit, with its message and Retry-After; the seconds it says."""
    assert response.status_code == 429, response.content[:300]
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    message = REFUSED.search(response.content.decode())
    assert message, response.content[:500]
    assert int(message.group(1)) == retry_after
    assert "sessionid" not in response.cookies
    return retry_after


def assert_wrong(way, response):
    assert response.status_code == way.wrong_status, response.content[:300]
    assert not REFUSED.search(response.content.decode())


def guess(way, times, *, username="root", addresses=None):
    for n in range(times):
        address = addresses[n] if addresses else ADDRESS
        assert_wrong(way, way.attempt(username, f"guess{n}", address))


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_ten_wrong_passwords_then_even_the_right_one_is_refused(root, way):
    guess(way, 10)

    assert_refused(way.attempt("root", "pw"))
    assert not Token.objects.exists()


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_the_page_says_why_and_when(root, way):
    guess(way, 10)

    response = way.attempt("root", "pw")

    seconds = assert_refused(response)
    if way.name == "token":
        assert response.json() == {
            "detail": f"Too many sign-in attempts; try again in {seconds} seconds.",
            "code": "throttled"}
    else:
        assert 'role="alert"' in response.content.decode() or "errornote" in \
            response.content.decode()
        assert b"didn't match" not in response.content
        assert b'name="password"' in response.content  # the form, to try again later


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_the_limit_per_username_holds_across_addresses(root, make_user, way):
    make_user("other", superuser=True)
    guess(way, 10, addresses=[f"198.51.100.{n}" for n in range(10)])

    refused = way.attempt("root", "pw", "192.0.2.200")
    other = way.attempt("other", "pw", "192.0.2.200")

    assert_refused(refused)
    assert other.status_code == way.signed_in_status  # the address itself is not limited


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_the_limit_per_address_holds_across_usernames(root, way):
    for n in range(10):
        assert_wrong(way, way.attempt(f"nobody{n}", "guess"))

    refused = way.attempt("root", "pw")
    elsewhere = way.attempt("root", "pw", "192.0.2.200")

    assert_refused(refused)
    assert elsewhere.status_code == way.signed_in_status


@pytest.mark.parametrize(("guessed_on", "signs_in_on"), [
    (a, b) for a in WAYS for b in WAYS if a is not b], ids=repr)
def test_the_ways_to_sign_in_share_their_counters(root, guessed_on, signs_in_on):
    guess(guessed_on, 10)

    assert_refused(signs_in_on.attempt("root", "pw"))


def test_guesses_spread_over_the_ways_add_up(root):
    token, app, admin_page = WAYS
    guess(token, 4)
    guess(app, 3)
    guess(admin_page, 3)

    for way in WAYS:
        assert_refused(way.attempt("root", "pw"))


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_only_failed_attempts_count(root, way):
    answers = [way.attempt("root", "pw").status_code for _ in range(15)]
    guess(way, 9)

    assert answers == [way.signed_in_status] * 15
    assert way.attempt("root", "pw").status_code == way.signed_in_status


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_after_the_window_they_sign_in(root, way, monkeypatch):
    start = time.time()
    monkeypatch.setattr(signin, "clock", lambda: start)  # the clock stands still...
    guess(way, 10)
    retry_after = assert_refused(way.attempt("root", "pw"))

    monkeypatch.setattr(signin, "clock", lambda: start + retry_after - 1)  # ...then moves
    still = way.attempt("root", "pw")
    monkeypatch.setattr(signin, "clock", lambda: start + retry_after)
    after = way.attempt("root", "pw")

    assert_refused(still)
    assert after.status_code == way.signed_in_status


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_x_forwarded_for_is_not_trusted_without_proxies(root, way):
    for n in range(10):
        assert_wrong(way, way.attempt(f"nobody{n}", "guess"))

    spoofed = way.attempt("root", "pw", HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert_refused(spoofed)


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_behind_a_proxy_the_address_it_appended_counts(root, way, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.1"
    for n in range(10):
        assert_wrong(way, way.attempt(f"nobody{n}", "guess", proxy,
                                      HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ADDRESS}"))

    refused = way.attempt("root", "pw", proxy, HTTP_X_FORWARDED_FOR=ADDRESS)
    another_client = way.attempt("root", "pw", proxy, HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert_refused(refused)
    assert another_client.status_code == way.signed_in_status


@pytest.mark.parametrize("way", WAYS, ids=repr)
def test_while_the_cache_is_unreachable_nobody_is_refused(root, way, settings, caplog):
    closed = ClosedPort()
    try:
        settings.CACHES = {"default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed.port}/0",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
        guess(way, 12)
        response = way.attempt("root", "pw")
    finally:
        closed.stop()

    assert response.status_code == way.signed_in_status
    assert "sign-in limit skipped, the cache is unreachable" in caplog.text


def test_every_way_to_sign_in_is_under_the_limit():
    """Every sign-in view routed is one of the limited ones; DRF's browsable-API sign-in
    (``rest_framework.urls``) is not routed at all."""

    def callbacks(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from callbacks(pattern.url_patterns)
            else:
                yield pattern.callback

    pages = tokens = 0
    for callback in callbacks(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None)
        if view is not None and issubclass(view, LoginView):
            form = getattr(callback, "view_initkwargs", {}).get("authentication_form",
                                                                 view.authentication_form)
            assert issubclass(form, SigninLimitMixin), view
            assert view.form_invalid is not LoginView.form_invalid, view  # the 429
            pages += 1
        cls = getattr(callback, "cls", None)
        if cls is not None and issubclass(cls, ObtainAuthToken):
            assert issubclass(cls.serializer_class, SigninTokenSerializer), cls
            tokens += 1

    assert (pages, tokens) == (1, 1)
    assert issubclass(admin.site.login_form, SigninLimitMixin)
    assert isinstance(admin.site, DatafiAdminSite)  # whose login() answers the 429
    with pytest.raises(NoReverseMatch):
        reverse("rest_framework:login")


def test_the_token_rate_setting_is_still_read_under_its_former_name():
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.DATAFI_SIGNIN_THROTTLE_RATE)")
    env = subprocess_env(DJANGO_SETTINGS_MODULE="config.settings",
                         DATAFI_TOKEN_THROTTLE_RATE="3/hour")
    env.pop("DATAFI_SIGNIN_THROTTLE_RATE", None)

    printed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True, timeout=60).stdout

    assert printed.strip() == "3/hour"
