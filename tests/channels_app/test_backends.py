"""The channel interface: backends found by name, each saying who receives (pure)."""

from types import SimpleNamespace

from channels_app.backends import Recipient, get_backend, registered_backends


def person(pk, email=""):
    return SimpleNamespace(pk=pk, email=email)


def test_builtin_backends_are_found_by_channel_name():
    assert get_backend("in_app").sends_digests is True
    assert get_backend("email").sends_digests is True
    assert get_backend("sms") is None
    assert {backend.name for backend in registered_backends()} >= {"in_app", "email"}


def test_in_app_reaches_each_user_once_and_ignores_addresses():
    recipients = get_backend("in_app").recipients(
        users=[person(3), person(1), person(3)], extra_addresses=["ops@example.com"]
    )

    assert recipients == [Recipient(user_id=3), Recipient(user_id=1)]


def test_email_reaches_each_address_once_whatever_its_case():
    users = [person(1, "Ops@Example.com"), person(2, ""), person(3, "dba@example.com")]

    recipients = get_backend("email").recipients(
        users=users, extra_addresses=["ops@example.com", "Lists@Example.com"]
    )

    assert recipients == [
        Recipient(user_id=1, address="ops@example.com"),  # the member keeps the address
        Recipient(user_id=3, address="dba@example.com"),
        Recipient(user_id=None, address="lists@example.com"),
    ]
