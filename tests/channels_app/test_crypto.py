"""Secrets at rest: encrypted in the database and in dumps, readable through key rotation."""

import io
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from channels_app.crypto import DecryptionError
from channels_app.models import EmailSettings
from channels_app.services.email import email_settings_update
from tests.support import ROOT

SECRET = "smtp-Secret-that-must-never-leak"


def raw_password() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM channels_app_emailsettings")
        [(value,)] = cursor.fetchall()
    return value


@pytest.fixture
def key_a(settings):
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [key]
    return key


def test_the_password_is_stored_as_a_fernet_token(db, key_a):
    email_settings_update(values={"host": "smtp.example.com", "password": SECRET})

    stored = raw_password()
    assert SECRET not in stored
    assert Fernet(key_a).decrypt(stored.encode()).decode() == SECRET
    assert EmailSettings.objects.get().password == SECRET


def test_a_dump_carries_the_token_not_the_password_and_loads_back(db, key_a, tmp_path):
    email_settings_update(values={"host": "smtp.example.com", "password": SECRET})
    out = io.StringIO()
    call_command("dumpdata", "--format", "json", stdout=out)  # the whole database
    dump = out.getvalue()
    assert SECRET not in dump
    assert '"password": "fernet:' in dump

    out = io.StringIO()
    call_command("dumpdata", "channels_app.emailsettings", stdout=out)
    (tmp_path / "dump.json").write_text(out.getvalue())
    EmailSettings.objects.all().delete()
    call_command("loaddata", str(tmp_path / "dump.json"), verbosity=0)
    assert EmailSettings.objects.get().password == SECRET


def test_empty_stays_empty(db, key_a):
    email_settings_update(values={"host": "smtp.example.com"})
    assert raw_password() == ""
    assert EmailSettings.objects.get().password == ""


def test_a_wrong_key_is_an_explicit_error_never_an_empty_password(db, key_a, settings):
    email_settings_update(values={"host": "smtp.example.com", "password": SECRET})
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]

    with pytest.raises(DecryptionError, match="channels_app.EmailSettings.password.*"
                                              "FIELD_ENCRYPTION_KEY"):
        EmailSettings.objects.get()


def test_a_malformed_key_names_the_setting(db, settings):
    settings.FIELD_ENCRYPTION_KEY = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY: key 1"):
        email_settings_update(values={"password": SECRET})


def test_rotation_keeps_every_secret_readable(db, key_a, settings):
    email_settings_update(values={"host": "smtp.example.com", "password": SECRET})
    before = raw_password()
    key_b = Fernet.generate_key().decode()

    settings.FIELD_ENCRYPTION_KEY = [key_b, key_a]  # new key first, old still decrypts
    assert EmailSettings.objects.get().password == SECRET
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    settings.FIELD_ENCRYPTION_KEY = [key_b]  # the old key dropped

    assert "channels_app.EmailSettings.password: 1 re-encrypted" in out.getvalue()
    assert raw_password() != before
    assert Fernet(key_b).decrypt(raw_password().encode()).decode() == SECRET
    assert EmailSettings.objects.get().password == SECRET


def test_rotation_without_the_old_key_fails_and_changes_nothing(db, key_a, settings):
    email_settings_update(values={"host": "smtp.example.com", "password": SECRET})
    before = raw_password()
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]

    with pytest.raises(CommandError, match="cannot be decrypted.*Nothing was changed"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert raw_password() == before


def test_without_a_key_the_embedded_default_keeps_one_under_var(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FIELD_ENCRYPTION_KEY"}
    env.update(DATAFI_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    script = ("import django; django.setup(); from django.conf import settings; "
              "print(settings.FIELD_ENCRYPTION_KEY[0])")

    runs = [subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip() for _ in range(2)]

    key_file = tmp_path / "field_encryption_key"
    assert runs[0] == runs[1] == key_file.read_text().strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    Fernet(runs[0])  # a valid Fernet key
