"""The app's pages over plain HTTP: sign-in for any user, pages that need it, the bell's
markup, and static files served by the app itself (WhiteNoise, no build step)."""

import json
import re

import pytest
from django.test import Client

from events.catalog import Priority

PAGES = ["/notifications/", "/notifications/1/", "/preferences/"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_a_visitor_to_sign_in(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_the_home_page_is_the_notification_center(client, user):
    client.force_login(user)
    assert client.get("/")["Location"] == "/notifications/"


def test_a_member_who_is_not_staff_signs_in_and_out(user):
    assert not user.is_staff
    browser = Client(enforce_csrf_checks=True)
    form = browser.get("/accounts/login/")
    assert form.status_code == 200 and b'name="username"' in form.content
    token = browser.cookies["csrftoken"].value

    wrong = browser.post("/accounts/login/", {"username": "alice", "password": "nope",
                                              "csrfmiddlewaretoken": token})
    assert wrong.status_code == 200 and b"didn't match" in wrong.content
    signed_in = browser.post("/accounts/login/", {"username": "alice", "password": "pw",
                                                  "csrfmiddlewaretoken": token,
                                                  "next": "/preferences/"})
    assert signed_in["Location"] == "/preferences/"
    page = browser.get("/preferences/")
    assert page.status_code == 200 and b"alice" in page.content

    token = browser.cookies["csrftoken"].value
    signed_out = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert signed_out["Location"] == "/accounts/login/"
    assert browser.get("/preferences/").status_code == 302


def test_the_header_has_an_accessible_bell_and_the_priority_colors(client, user):
    client.force_login(user)
    page = client.get("/notifications/").content.decode()
    assert 'id="bell-button"' in page
    assert 'aria-label="Notifications: 0 unread"' in page
    assert 'aria-expanded="false"' in page and 'aria-controls="bell-panel"' in page
    assert '<meta name="csrf-token"' in page
    assert '<link rel="stylesheet" href="/priority-colors.css">' in page  # the badges' colors
    assert "<title>Notifications · Datafi</title>" in page
    assert "Admin" not in page  # only staff get the admin link


def test_the_detail_page_carries_no_data_of_its_own(client, user):
    """Pages render only the frame; data comes from the REST API, which scopes it."""
    client.force_login(user)
    page = client.get("/notifications/12345/").content.decode()
    assert 'data-notification-id="12345"' in page


def test_the_priority_colors_are_a_stylesheet_made_from_the_one_palette(client, db):
    """events.catalog's palette, by data-priority: the app's pages and the admin link it."""
    response = client.get("/priority-colors.css")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/css; charset=utf-8"
    assert "max-age=3600" in response["Cache-Control"]
    css = response.content.decode()
    for priority, color in Priority.BADGE_COLORS.items():
        assert f'[data-priority="{priority}"] {{ --priority-color: {color}; }}' in css


def app_config(page) -> dict:
    """The reference data a page carries (its ``app-config`` JSON)."""
    return json.loads(re.search(r'<script id="app-config" type="application/json">(.*?)</script>',
                                page.content.decode(), re.S).group(1))


def test_the_preferences_page_offers_the_zones_and_only_the_users_own_workspaces(
        client, user, make_user, make_workspace):
    mine = make_workspace("Analytics", users=[user])
    make_workspace("Secret project", users=[make_user("bob")])
    client.force_login(user)

    config = app_config(client.get("/preferences/"))

    assert config["workspaces"] == [{"id": mine.public_id, "name": "Analytics"}]
    assert config["time_zones"][0] == "UTC"
    assert {"Europe/Paris", "America/New_York", "Asia/Kathmandu"} <= set(config["time_zones"])
    assert "US/Eastern" not in config["time_zones"]  # aliases are not offered
    assert {"key": "query.query_failed", "label": "Query failed", "category": "queries"} in \
        config["event_types"]
    other = app_config(client.get("/notifications/"))
    assert "workspaces" not in other and "time_zones" not in other  # only where it is used


@pytest.mark.parametrize("name", ["app.css", "api.js", "bell.js", "center.js", "detail.js",
                                  "preferences.js", "attention.js", "incidents.js", "forms.js",
                                  "quiet-hours.js", "mutes.js", "admin.css",
                                  "admin-periodic-task.js", "swagger-ui-page.css"])
def test_static_files_are_served_by_the_app(client, db, name):
    response = client.get(f"/static/web/{name}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body
