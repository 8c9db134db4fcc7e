"""What notifications writes beside routing and sending, one module per subdomain:

- ``digests``: claim a bucket's items into digests, flush them;
- ``reading``: the bell's read state;
- ``preferences``: users' channel choices;
- ``rules``: routing rules.

Routing is ``notifications.routing``, sending ``notifications.deliveries``.
"""
