"""The SMTP test servers of tests/channels_app, for the delivery pipeline's tests."""

import subprocess
import sys

import pytest
from django.core.management import call_command

from channels_app.models import EmailSettings
from tests.channels_app.conftest import (  # noqa: F401  (fixtures)
    certificate,
    closed_port,
    private_networks,
    pytest_configure,
    receiver,
    smtp_server,
)
from tests.channels_app.smtp_servers import HOST
from tests.support import ROOT, stop_tree, subprocess_env, wait_until

SENDER = "alerts@datafi.test"


@pytest.fixture
def email_on():
    """Email enabled and pointed at a server: ``email_on(server)``."""

    def configure(server, *, enabled=True):
        EmailSettings.objects.update_or_create(pk=EmailSettings.SINGLETON_ID, defaults={
            "host": HOST, "port": server.port, "encryption": "none", "from_email": SENDER,
            "from_name": "Datafi Alerts", "timeout": 10, "enabled": enabled})

    return configure


@pytest.fixture
def audience_breaks_for(monkeypatch):
    """``audience_breaks_for(event_id)``: routing any batch holding that event raises (its
    audience lookup explodes); every other batch is routed as usual."""
    from notifications.routing import plan

    real = plan.audiences_get

    def break_for(bad):
        def audiences(batch):
            if any(event.pk == bad for event in batch):
                raise RuntimeError("audience lookup exploded")
            return real(batch)

        monkeypatch.setattr(plan, "audiences_get", audiences)

    return break_for


@pytest.fixture
def beat(live_db, tmp_path):
    """Celery beat on the control plane's schedule (``sync_schedule``), stopped however the
    test ends."""
    call_command("sync_schedule", verbosity=0)
    log_path = tmp_path / "beat.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
             "--max-interval", "1", "--pidfile", ""],
            cwd=ROOT, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "beat: Starting" in log_path.read_text() or process.poll() is not None,
                   timeout=120, message="beat to start")
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield process
    finally:
        stop_tree(process, grace=20)
