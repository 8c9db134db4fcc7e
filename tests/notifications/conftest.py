"""The SMTP test servers of tests/channels_app, for the delivery pipeline's tests."""

import pytest

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

SENDER = "alerts@datafi.test"


@pytest.fixture
def email_on():
    """Email enabled and pointed at a server: ``email_on(server)``."""

    def configure(server, *, enabled=True):
        EmailSettings.objects.update_or_create(pk=EmailSettings.SINGLETON_ID, defaults={
            "host": HOST, "port": server.port, "encryption": "none", "from_email": SENDER,
            "from_name": "Datafi Alerts", "timeout": 10, "enabled": enabled})

    return configure
