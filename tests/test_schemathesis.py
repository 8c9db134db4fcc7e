"""The published OpenAPI schema tells the whole truth: schemathesis generates requests from
``/api/schema/`` for every operation it lists and checks each answer against it.

Every phase (examples, coverage, fuzzing, stateful) and every check, as a superuser and as
a plain user (token auth), against a real gunicorn on the test database. The server may
reach nothing but that database (``tests.loopback_only``): the operations that connect
somewhere (test connection, send a test email or webhook event) answer their documented
``{"ok": false, ...}`` at once, and what is queued (a flush, routing) goes to a
filesystem broker of the server's own that no worker reads.

Seeded and derandomized (``--generation-deterministic``, no example database), so a run
generates the same cases each time. ``DATAFI_SCHEMATHESIS_EXAMPLES`` (default
``EXAMPLES``) sets the examples per operation.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from rest_framework.authtoken.models import Token

from channels_app.models import EmailSettings, WebhookEndpoint
from events.models import Membership, Workspace
from tests.support import (
    HTTP_NOT_YET,
    ROOT,
    emit_and_route,
    free_port,
    stop_tree,
    subprocess_env,
    wait_until,
)

EXAMPLES = 20
SEED = 19


@pytest.fixture
def seeded(live_db, make_user):
    """Something behind each kind of id: a workspace both users belong to, notifications,
    deliveries, an endpoint, a rule, a mute. Tokens for a superuser and a plain user."""
    admin = make_user("schema-admin", superuser=True)
    user = make_user("schema-user")
    workspace = Workspace.objects.create(public_id="ws_schema", name="Schema")
    Membership.objects.bulk_create([Membership(workspace=workspace, user=admin),
                                    Membership(workspace=workspace, user=user)])
    closed = free_port()  # nothing listens there: connections are refused
    EmailSettings.objects.update_or_create(pk=1, defaults={
        "host": "127.0.0.1", "port": closed, "from_email": "datafi@example.com",
        "timeout": 2})
    WebhookEndpoint.objects.create(name="Hooks", url=WEBHOOK_URLS[0])
    # The server checks a password with its own hashers (not the tests' fast one).
    hasher = PBKDF2PasswordHasher()
    get_user_model().objects.filter(pk__in=[admin.pk, user.pk]).update(
        password=hasher.encode("pw", hasher.salt()))
    emit_and_route("data_source.connection_lost", workspace, datasource_name="Snowflake")
    emit_and_route("query.query_failed", workspace, query_id="q1")
    return {"tokens": {"superuser": Token.objects.create(user=admin).key,
                       "user": Token.objects.create(user=user).key},
            "usernames": {"superuser": admin.username, "user": user.username},
            "workspace": workspace.public_id,
            "user_ids": dict(get_user_model().objects.values_list("username", "pk"))}


#: Host names that do not resolve where the server runs (tests.loopback_only): saved as
#: they would be anywhere, and never reached.
WEBHOOK_URLS = ["https://hooks.example.com/datafi", "https://alerts.example.org:8443/in"]
ROUTING_FILES = [
    "routing:\n  queries:\n    channels: [in_app]\n",
    "routing:\n  data_sources:\n    connection_lost:\n      channels: [in_app, email]\n"
    "      priority: critical\n",
]


def hooks_context(base, seeded, role) -> str:
    """What ``tests/schemathesis_hooks.py`` reads (``DATAFI_SCHEMATHESIS_CONTEXT``)."""
    return json.dumps({
        "base": base, "token": seeded["tokens"][role], "username": seeded["usernames"][role],
        "password": "pw", "user_ids": seeded["user_ids"], "workspace": seeded["workspace"],
        "webhook_urls": WEBHOOK_URLS, "routing_files": ROUTING_FILES})


@pytest.fixture
def api_server(seeded, tmp_path):
    """gunicorn serving the project (``tests.loopback_only``) on the test database."""
    port = free_port()
    db = connection.settings_dict
    allowed = "" if connection.vendor == "sqlite" else \
        f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    env = subprocess_env(
        DATAFI_VAR_DIR=str(tmp_path / "var"), CELERY_BROKER_URL="filesystem://localhost//",
        CACHE_URL="", SECRET_KEY=settings.SECRET_KEY,
        FIELD_ENCRYPTION_KEY=",".join(settings.FIELD_ENCRYPTION_KEY),
        DATAFI_TEST_ALLOWED_CONNECTIONS=allowed)
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115  (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tests.loopback_only:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/api/schema/", timeout=30).ok,
                   timeout=120, ignore=HTTP_NOT_YET, message="gunicorn to answer")
        yield base
    finally:
        stop_tree(process)
        log.close()


@pytest.mark.parametrize("role", ["superuser", "user"])
def test_every_answer_is_the_one_the_schema_documents(api_server, seeded, role, tmp_path):
    examples = int(os.environ.get("DATAFI_SCHEMATHESIS_EXAMPLES", EXAMPLES))
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{api_server}/api/schema/",
        "--phases", "examples,coverage,fuzzing,stateful", "--checks", "all",
        "--max-examples", str(examples), "--seed", str(SEED), "--generation-deterministic",
        "--workers", "1", "--no-color",
        "--header", f"Authorization: Token {seeded['tokens'][role]}",
        "--request-timeout", "30",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
           "PYTHONPATH": str(ROOT),
           "DATAFI_SCHEMATHESIS_CONTEXT": hooks_context(api_server, seeded, role)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=900)
    output = result.stdout + result.stderr
    (Path(settings.VAR_DIR) / f"schemathesis-{role}.log").write_text(output)  # to read
    summary = re.findall(r".*(?:passed|failed|cases|operations).*", output)[-10:]
    assert result.returncode == 0, output[-20000:]
    print("\n".join(summary))
