"""Email settings as an admin and an API client use them: save, test, never show the password."""

import logging

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from channels_app.models import EmailSettings
from channels_app.services.email import email_settings_get, email_settings_update
from core.errors import ApplicationError
from tests.support import api_client_for

from .smtp_servers import HOST, PASSWORD, USERNAME

URL = "/api/email-settings/"
ADMIN_URL = "/admin/channels_app/emailsettings/"
FIELDS = {"host", "port", "encryption", "username", "password_set", "from_email", "from_name",
          "timeout", "enabled"}


@pytest.fixture(autouse=True)
def log_everything(caplog):
    caplog.set_level(logging.DEBUG)


@pytest.fixture
def starttls_auth(smtp_server):
    return smtp_server(encryption="starttls", auth=True)


def stored(server, **extra):
    return email_settings_update(values={
        "host": HOST, "port": server.port, "encryption": server.encryption,
        "username": USERNAME, "password": PASSWORD, "from_email": "alerts@datafi.test",
        "from_name": "Datafi", **extra})


# --- REST ---------------------------------------------------------------------------------

def test_get_has_the_product_field_names_and_no_password(db, staff_api):
    body = staff_api.get(URL).json()
    assert set(body) == FIELDS
    assert body | {} == {"host": "", "port": 587, "encryption": "starttls", "username": "",
                         "password_set": False, "from_email": "", "from_name": "Datafi",
                         "timeout": 10, "enabled": False}


def test_put_then_patch_keeps_the_password_unless_a_new_one_is_given(db, staff_api, caplog):
    put = staff_api.put(URL, {"host": "smtp.example.com", "port": 465, "encryption": "ssl",
                              "username": "u", "password": PASSWORD, "from_email": "a@b.test",
                              "from_name": "Ops", "timeout": 5, "enabled": True},
                        format="json")
    kept = staff_api.patch(URL, {"host": "smtp2.example.com", "password": ""}, format="json")
    absent = staff_api.patch(URL, {"port": 2465}, format="json")

    assert put.status_code == kept.status_code == absent.status_code == 200
    assert put.json() == {"host": "smtp.example.com", "port": 465, "encryption": "ssl",
                          "username": "u", "password_set": True, "from_email": "a@b.test",
                          "from_name": "Ops", "timeout": 5, "enabled": True}
    assert email_settings_get().password == PASSWORD
    assert (kept.json()["host"], absent.json()["port"]) == ("smtp2.example.com", 2465)

    replaced = staff_api.patch(URL, {"password": "new-one"}, format="json")
    assert replaced.json()["password_set"] is True
    assert email_settings_get().password == "new-one"
    for response in (put, kept, absent, replaced):
        assert PASSWORD not in response.content.decode()
    assert PASSWORD not in caplog.text


def test_invalid_values_are_refused_naming_the_field(db, staff_api):
    response = staff_api.patch(URL, {"encryption": "tls", "port": 0}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"encryption", "port"}


def test_email_settings_need_staff_and_the_model_permissions(db, make_user, api):
    assert api.get(URL).status_code == 403
    viewer = make_user("viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_emailsettings"))
    client = api_client_for(viewer)
    assert client.get(URL).status_code == 200
    assert client.patch(URL, {"host": "x"}, format="json").status_code == 403
    assert client.post(URL + "test-connection/", {}, format="json").status_code == 403


def test_test_connection_uses_the_stored_settings(db, staff_api, starttls_auth, caplog):
    stored(starttls_auth)
    response = staff_api.post(URL + "test-connection/", {}, format="json")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert PASSWORD not in caplog.text


def test_settings_in_the_body_are_tested_instead_unsaved(db, staff_api, starttls_auth,
                                                         closed_port):
    stored(starttls_auth)
    response = staff_api.post(URL + "test-connection/", {"port": closed_port.port},
                              format="json")
    wrong = staff_api.post(URL + "test-connection/", {"password": "wrong"}, format="json")

    assert response.status_code == 200
    assert response.json()["error"] == "unreachable"
    assert wrong.json()["error"] == "auth_failed"
    assert email_settings_get().port == starttls_auth.port


def test_nothing_configured_is_not_configured(db, staff_api):
    body = staff_api.post(URL + "test-connection/", {}, format="json").json()
    assert body["ok"] is False and body["error"] == "not_configured" and body["detail"]
    body = staff_api.post(URL + "send-test-email/", {}, format="json").json()
    assert body["error"] == "not_configured"


def test_send_test_email_goes_to_the_caller_by_default(db, staff, staff_api, smtp_server):
    server = smtp_server(encryption="ssl", auth=True)
    stored(server)

    mine = staff_api.post(URL + "send-test-email/", {}, format="json")
    other = staff_api.post(URL + "send-test-email/", {"to": "ops@example.com"}, format="json")

    assert mine.json() == other.json() == {"ok": True}
    assert [r.rcpt_tos for r in server.received] == [[staff.email], ["ops@example.com"]]
    message = server.received[0].message
    assert message["Subject"] == "Datafi test email"
    assert message["From"] == "Datafi <alerts@datafi.test>"
    assert message["To"] == staff.email
    assert "test email from Datafi" in server.received[0].text()
    assert "Email settings work" in server.received[0].html()


def test_send_test_email_with_unsaved_settings(db, staff_api, smtp_server):
    server = smtp_server(encryption="none")
    response = staff_api.post(URL + "send-test-email/", {
        "to": "ops@example.com", "host": HOST, "port": server.port, "encryption": "none",
        "from_email": "alerts@datafi.test"}, format="json")
    assert response.json() == {"ok": True}
    assert server.received[0].rcpt_tos == ["ops@example.com"]
    assert EmailSettings.objects.get().host == ""


def test_enabling_needs_a_host_and_a_from_address_each_named(db, staff_api):
    response = staff_api.patch(URL, {"enabled": True, "host": ""}, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"host", "from_email"}
    assert errors["host"] == ["Required while email is enabled."]
    stored = EmailSettings.objects.get()
    assert (stored.enabled, stored.host, stored.from_email) == (False, "", "")


def test_an_enabled_configuration_cannot_lose_a_required_field(db, staff_api):
    complete = {"host": "smtp.example.com", "from_email": "alerts@datafi.test", "enabled": True}
    assert staff_api.patch(URL, complete, format="json").status_code == 200

    blanked = staff_api.patch(URL, {"host": "  ", "port": 2525}, format="json")
    no_sender = staff_api.put(URL, {"host": "smtp.example.com", "from_email": "",
                                    "enabled": True}, format="json")

    assert (blanked.status_code, list(blanked.json())) == (400, ["host"])
    assert (no_sender.status_code, list(no_sender.json())) == (400, ["from_email"])
    stored = EmailSettings.objects.get()
    assert (stored.host, stored.port, stored.from_email) == (
        "smtp.example.com", 587, "alerts@datafi.test")  # nothing of either request saved
    switched_off = staff_api.patch(URL, {"enabled": False, "host": ""}, format="json")
    assert switched_off.status_code == 200  # an incomplete configuration may be kept off


def test_the_service_refuses_enabling_an_incomplete_configuration(db):
    email_settings_get()
    with pytest.raises(ApplicationError) as refused:
        email_settings_update(values={"enabled": True, "host": "smtp.example.com"})

    assert set(refused.value.errors) == {"from_email"}
    assert EmailSettings.objects.get().enabled is False


LINE_BREAKS = {"crlf": "Datafi\r\nBcc: victim@example.com", "lf": "Data\nfi",
               "tab": "Data\tfi", "nul": "Data\x00fi", "line-separator": "Data\u2028fi"}


@pytest.mark.parametrize("field", ["from_name", "username", "host"])
@pytest.mark.parametrize("value", LINE_BREAKS.values(), ids=LINE_BREAKS.keys())
def test_control_characters_are_refused_naming_the_field(db, staff_api, field, value):
    response = staff_api.patch(URL, {field: value}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert "\r" not in response.content.decode() and "victim" not in response.content.decode()
    assert getattr(EmailSettings.objects.get(), field) == EmailSettings._meta.get_field(
        field).get_default()


def test_a_password_longer_than_1024_characters_is_refused(db, staff_api):
    too_long = staff_api.patch(URL, {"password": "p" * (1024 * 1024)}, format="json")
    longest = staff_api.patch(URL, {"password": "p" * 1024}, format="json")

    assert too_long.status_code == 400
    assert list(too_long.json()) == ["password"]
    assert "1024" in too_long.json()["password"][0]
    assert len(too_long.content) < 300
    assert longest.status_code == 200 and email_settings_get().password == "p" * 1024


@pytest.mark.parametrize(("body", "field", "problem"), [
    ({"hots": "smtp.example.com"}, "hots", "unknown field"),
    ({"host": "smtp.example.com", "password_set": True}, "password_set", "read-only"),
], ids=["misspelt", "read-only"])
def test_a_field_the_settings_do_not_take_is_refused(db, staff_api, body, field, problem):
    for method in (staff_api.patch, staff_api.put):
        response = method(URL, body, format="json")

        assert response.status_code == 400
        assert list(response.json()) == [field]
        assert problem in response.json()[field][0]
    assert EmailSettings.objects.get().host == ""


def test_the_test_endpoints_refuse_unknown_fields(db, staff_api):
    for path in ("test-connection/", "send-test-email/"):
        response = staff_api.post(URL + path, {"prot": 25, "enabled": True}, format="json")

        assert response.status_code == 400
        assert set(response.json()) == {"prot", "enabled"}


# --- admin --------------------------------------------------------------------------------

@pytest.fixture
def admin(client, staff):
    client.force_login(staff)
    return client


def admin_form(server=None, **extra):
    values = {"host": HOST, "port": server.port if server else 587,
              "encryption": server.encryption if server else "starttls",
              "username": USERNAME, "password": "", "from_email": "alerts@datafi.test",
              "from_name": "Datafi", "timeout": 10}
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


def test_email_settings_are_listed_under_events_in_the_admin(db, admin):
    index = admin.get("/admin/")
    sections = {app["app_label"]: [m["object_name"] for m in app["models"]]
                for app in index.context["app_list"]}
    assert "EmailSettings" in sections["events"]
    assert "EmailSettings" not in sections.get("channels_app", [])
    events_page = admin.get("/admin/events/")
    assert ADMIN_URL in events_page.content.decode()


def test_the_changelist_opens_the_one_record_which_cannot_be_added_or_deleted(db, admin):
    response = admin.get(ADMIN_URL)
    assert response.status_code == 302
    assert response.url == f"{ADMIN_URL}1/change/"
    page = admin.get(response.url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<title>Email settings" in html
    assert "email-disabled-note" in html
    assert "Email is not enabled: email deliveries wait as pending" in html
    assert "Test Connection" in html and "Send Test Email" in html
    assert admin.get(ADMIN_URL + "add/").status_code == 403
    assert admin.get(ADMIN_URL + "1/delete/").status_code == 403


def test_saving_keeps_the_password_unless_a_new_one_is_typed(db, admin, caplog):
    first = admin.post(f"{ADMIN_URL}1/change/", admin_form(password=PASSWORD, enabled="on"))
    assert first.status_code == 302
    assert email_settings_get().password == PASSWORD
    page = admin.get(f"{ADMIN_URL}1/change/").content.decode()
    assert PASSWORD not in page
    assert "Password: <strong>set</strong>" in page
    assert "email-disabled-note" not in page

    admin.post(f"{ADMIN_URL}1/change/", admin_form(host="smtp2.example.com", enabled="on"))
    settings = email_settings_get()
    assert (settings.host, settings.password, settings.enabled) == (
        "smtp2.example.com", PASSWORD, True)
    assert PASSWORD not in caplog.text


def test_test_connection_button_tests_the_form_values_without_saving(db, admin, starttls_auth):
    email_settings_update(values={"host": "old.example.com", "password": PASSWORD})

    response = admin.post(f"{ADMIN_URL}1/change/",
                          admin_form(starttls_auth, _test_connection="Test Connection"))

    assert response.status_code == 200
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Test Connection succeeded."]
    html = response.content.decode()
    assert f'value="{starttls_auth.port}"' in html  # the typed values are shown again
    assert PASSWORD not in html
    assert email_settings_get().host == "old.example.com"


def test_test_connection_button_shows_the_failure(db, admin, closed_port):
    response = admin.post(f"{ADMIN_URL}1/change/", admin_form(
        port=closed_port.port, encryption="none", username="", _test_connection="1"))
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "error"
    assert str(message).startswith("unreachable: ")


def test_send_test_email_button_sends_to_the_typed_address(db, admin, smtp_server, caplog):
    server = smtp_server(encryption="ssl", auth=True)
    response = admin.post(f"{ADMIN_URL}1/change/", admin_form(
        server, password=PASSWORD, _test_to="ops@example.com", _send_test_email="1"))

    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Test email sent to ops@example.com."]
    assert server.received[0].rcpt_tos == ["ops@example.com"]
    assert PASSWORD not in response.content.decode()
    assert email_settings_get().password == ""  # typed for the test, not saved
    assert PASSWORD not in caplog.text


def test_the_admin_refuses_enabling_an_incomplete_configuration_on_its_fields(db, admin):
    response = admin.post(f"{ADMIN_URL}1/change/",
                          admin_form(host="", from_email="", enabled="on"))

    assert response.status_code == 200  # the form again, with the errors on the fields
    form = response.context["adminform"].form
    assert set(form.errors) == {"host", "from_email"}
    assert form.errors["host"] == ["Required while email is enabled."]
    assert "Required while email is enabled." in response.content.decode()
    assert EmailSettings.objects.get().enabled is False


def test_the_admin_says_when_an_enabled_configuration_is_incomplete(db, admin):
    EmailSettings.objects.update_or_create(pk=1, defaults={  # as an older version could
        "enabled": True, "host": "", "from_email": ""})

    html = admin.get(f"{ADMIN_URL}1/change/").content.decode()

    assert "email-incomplete-note" in html and "email-disabled-note" not in html
    assert "missing: host, from address" in html


@pytest.mark.parametrize(("field", "value"), [
    ("from_name", "Datafi\r\nBcc: victim@example.com"), ("username", "mail\ner"),
    ("password", "p" * 1025),
])
def test_the_admin_refuses_control_characters_and_long_passwords(db, admin, field, value):
    response = admin.post(f"{ADMIN_URL}1/change/", admin_form(**{field: value}))

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    stored = EmailSettings.objects.get()
    assert (stored.from_name, stored.username, stored.password) == ("Datafi", "", "")
