"""Signals channels_app sends to the layers above it (which it must not import)."""

from django.dispatch import Signal

#: Sent after a save of the email settings with ``enabled`` on has committed: email
#: deliveries that waited as pending may be sent now.
email_enabled = Signal()
