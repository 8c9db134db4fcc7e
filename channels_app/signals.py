"""Signals channels_app sends to the layers above it (which it must not import)."""

from django.dispatch import Signal

#: Sent with ``channel`` (a channel name) after a change that may have made the channel
#: ready to send has committed (e.g. the email settings saved enabled): its deliveries that
#: waited as pending may be sent now.
channel_ready = Signal()
