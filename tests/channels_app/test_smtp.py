"""The SMTP transport against real servers on loopback: Test Connection and sending."""

import time

import pytest

from channels_app.emails import build_test_email
from channels_app.errors import PermanentError, TransientError
from channels_app.transports import smtp
from channels_app.transports.smtp import SmtpConfig, send_message

from .smtp_servers import HOST, PASSWORD, USERNAME

SENDER = "alerts@datafi.test"


def config_for(server, *, encryption=None, username="", password="", timeout=10):
    return SmtpConfig(host=HOST, port=server.port, encryption=encryption or server.encryption,
                      username=username, password=password, from_email=SENDER,
                      from_name="Datafi Alerts", timeout=timeout)


def build_message(*, to="ops@example.com", message_id="<m@datafi.test>"):
    """The transport sends whatever message it is given; Send Test Email's is the smallest."""
    return build_test_email(to=to, from_email=SENDER, from_name="Datafi Alerts",
                            message_id=message_id, server="loopback")


def login(auth):
    return {"username": USERNAME, "password": PASSWORD} if auth else {}


VARIANTS = [(encryption, auth) for encryption in ("none", "starttls", "ssl")
            for auth in (False, True)]


@pytest.mark.parametrize(("encryption", "auth"), VARIANTS)
def test_connection_ok_for_every_encryption_with_and_without_auth(smtp_server, encryption,
                                                                  auth):
    server = smtp_server(encryption=encryption, auth=auth)
    assert smtp.test_connection(config_for(server, **login(auth))).as_dict() == {"ok": True}


@pytest.mark.parametrize(("encryption", "auth"), VARIANTS)
def test_a_message_arrives_whole_over_every_encryption(smtp_server, encryption, auth):
    server = smtp_server(encryption=encryption, auth=auth)
    message = build_message(message_id="<delivery-42@datafi.test>")

    sent = send_message(config_for(server, **login(auth)), message)

    assert sent.code == 250
    assert sent.message_id == "<delivery-42@datafi.test>"
    [received] = server.received
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["ops@example.com"]
    parsed = received.message
    assert parsed["Subject"] == "Datafi test email"
    assert parsed["From"] == "Datafi Alerts <alerts@datafi.test>"
    assert parsed["To"] == "ops@example.com"
    assert parsed["Message-ID"] == "<delivery-42@datafi.test>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime.tzinfo is not None
    assert "It was sent through loopback." in received.text()
    assert "<strong>Datafi Events &amp; Notifications</strong>" in received.html()


# --- what each failure means -------------------------------------------------------------

def test_closed_port_is_unreachable(closed_port):
    result = smtp.test_connection(SmtpConfig(host=HOST, port=closed_port.port, encryption="none",
                                        from_email=SENDER, timeout=5))
    assert result.ok is False
    assert result.error == "unreachable"
    assert str(closed_port.port) in result.detail


def test_a_server_that_never_speaks_times_out_within_the_configured_timeout(silent_server):
    started = time.monotonic()
    result = smtp.test_connection(SmtpConfig(host=HOST, port=silent_server.port, encryption="none",
                                        from_email=SENDER, timeout=2))
    elapsed = time.monotonic() - started
    assert (result.ok, result.error) == (False, "timeout")
    assert "2 seconds" in result.detail
    assert 1.5 <= elapsed < 2 + 8  # the configured timeout, plus slack for a loaded machine


def test_wrong_password_is_auth_failed(smtp_server):
    server = smtp_server(encryption="starttls", auth=True)
    result = smtp.test_connection(config_for(server, username=USERNAME, password="wrong"))
    assert (result.ok, result.error) == (False, "auth_failed")
    assert "wrong" not in result.detail


def test_starttls_asked_of_a_server_without_it_is_starttls_unsupported(smtp_server):
    server = smtp_server(encryption="none")
    result = smtp.test_connection(config_for(server, encryption="starttls"))
    assert (result.ok, result.error) == (False, "starttls_unsupported")


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_an_untrusted_certificate_is_tls_failed(smtp_server, untrusted_certificate, encryption):
    server = smtp_server(encryption=encryption, certificate=untrusted_certificate)
    result = smtp.test_connection(config_for(server))
    assert (result.ok, result.error) == (False, "tls_failed")
    assert "certificate" in result.detail


def test_no_settings_is_not_configured():
    result = smtp.test_connection(SmtpConfig(host="", port=587))
    assert result.as_dict() == {"ok": False, "error": "not_configured",
                                "detail": result.detail}
    assert result.detail


def test_4xx_is_transient_and_5xx_permanent_with_the_code(smtp_server):
    server = smtp_server(replies=["451 4.3.0 Try again later", "550 5.1.1 No such user"])
    message = build_message(message_id="<same@datafi.test>")

    with pytest.raises(TransientError) as transient:
        send_message(config_for(server), message)
    with pytest.raises(PermanentError) as permanent:
        send_message(config_for(server), message)
    sent = send_message(config_for(server), message)

    assert (transient.value.code, transient.value.kind) == (451, "rejected")
    assert "Try again later" in transient.value.detail
    assert (permanent.value.code, permanent.value.kind) == (550, "rejected")
    assert "No such user" in permanent.value.detail
    assert sent.code == 250
    assert [r.message["Message-ID"] for r in server.received] == ["<same@datafi.test>"] * 3


def test_send_failures_say_transient_or_permanent(smtp_server, closed_port, silent_server):
    message = build_message()
    closed = SmtpConfig(host=HOST, port=closed_port.port, encryption="none",
                        from_email=SENDER, timeout=5)
    silent = SmtpConfig(host=HOST, port=silent_server.port, encryption="none",
                        from_email=SENDER, timeout=1)
    server = smtp_server(encryption="starttls", auth=True)

    with pytest.raises(TransientError) as refused:
        send_message(closed, message)
    with pytest.raises(TransientError) as timed_out:
        send_message(silent, message)
    with pytest.raises(PermanentError) as auth:
        send_message(config_for(server, username=USERNAME, password="wrong"), message)

    assert refused.value.kind == "unreachable"
    assert timed_out.value.kind == "timeout"
    assert (auth.value.kind, auth.value.code) == ("auth_failed", 535)
    assert server.received == []


def test_config_repr_hides_the_password():
    assert PASSWORD not in repr(SmtpConfig(host=HOST, port=25, password=PASSWORD))


def test_bcc_recipients_receive_it_without_the_header_on_every_attempt(smtp_server):
    server = smtp_server(replies=["451 4.3.0 Busy"])
    message = build_message()
    message["Bcc"] = "audit@example.com"

    with pytest.raises(TransientError):
        send_message(config_for(server), message)
    send_message(config_for(server), message)

    assert [r.rcpt_tos for r in server.received] == [["ops@example.com", "audit@example.com"]] * 2
    assert all(r.message["Bcc"] is None for r in server.received)
