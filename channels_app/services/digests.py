"""Digest switches: per channel, batch medium, low and info into digests or send them now.

Critical and high are immediate whatever a switch says. A channel without a stored
setting batches (if it sends digests at all: ``ChannelBackend.sends_digests``).
"""

from core.errors import NotFound

from ..backends import get_backend, registered_backends
from ..models import DigestSetting


def digest_switches() -> dict[str, bool]:
    """Channel -> digests on, as stored (a channel without a row batches). One query."""
    return dict(DigestSetting.objects.values_list("channel", "digest_enabled"))


def digest_settings_list() -> list[DigestSetting]:
    """A setting for every registered channel that sends digests, stored or the default."""
    stored = {setting.channel: setting for setting in DigestSetting.objects.all()}
    return [stored.get(backend.name) or DigestSetting(channel=backend.name, digest_enabled=True)
            for backend in registered_backends() if backend.sends_digests]


def digest_setting_get(*, channel: str) -> DigestSetting:
    """The setting of ``channel`` (stored or the default); raises ``NotFound`` for a
    channel that is not installed or sends no digests."""
    backend = get_backend(channel)
    if backend is None or not backend.sends_digests:
        raise NotFound(f"No channel {channel!r} with digests is installed.", field="channel")
    return (DigestSetting.objects.filter(channel=channel).first()
            or DigestSetting(channel=channel, digest_enabled=True))


def digest_setting_set(*, channel: str, digest_enabled: bool) -> DigestSetting:
    """Switch digests on or off for one channel (critical and high are never batched)."""
    digest_setting_get(channel=channel)
    setting, _ = DigestSetting.objects.update_or_create(
        channel=channel, defaults={"digest_enabled": digest_enabled})
    return setting
