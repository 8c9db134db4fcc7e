"""A channel that exists only here: a team chat, added the way README's "Adding a channel"
says, by an app of its own (``DATAFI_EXTRA_APPS=tests.plugin_channel``). Nothing of the
project knows it."""
