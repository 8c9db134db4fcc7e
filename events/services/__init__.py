"""What the events app writes, one module per subdomain:

- ``catalog``: the built-in catalog's sync, event type changes;
- ``workspaces``: workspaces and members;
- ``emit``: ``event_emit`` (``from events import emit``);
- ``outbox``: routing jobs, the routing-request protocol, the outbox sweep;
- ``lifecycle``: an event's status after emit (the only writer of ``Event.status``).
"""
