"""How many messages wait in each queue, read from the broker itself.

For each queue a passive ``queue_declare``,
which every broker answers with the queue's message count without changing anything:
RabbitMQ from the queue (ready messages; unacknowledged ones are held by workers),
Redis as ``LLEN`` of the queue's lists (kombu's priority lists included), the embedded
filesystem broker by counting the queue's message files. A queue that does not exist yet
holds nothing.
"""

import contextlib

from celery import current_app

from channels_app.backends import registered_backends
from config import control_plane


def queue_names() -> list[str]:
    """The control plane's queues, and any a channel brings (README, "Adding a channel")."""
    names = list(control_plane.QUEUES)
    for backend in registered_backends():
        for queue in (backend.queue, backend.batched_queue):
            if queue not in names:
                names.append(queue)
    return names


def queue_depths(names: list[str] | None = None) -> dict[str, int]:
    """Queue -> messages waiting in it. Raises what the broker raises when it is down
    (bounded by the broker's connection and socket timeouts in the settings).

    Uses a connection of the process's pool (a scrape every few seconds opens none); its
    default channel on Redis and the filesystem, a channel of its own on RabbitMQ, which
    closes a channel that asked for a queue it does not have.
    """
    depths = {}
    with current_app.pool.acquire(block=True, timeout=5) as conn:
        own = conn.transport.driver_type == "amqp"
        try:
            channel = conn.channel() if own else conn.default_channel
            for name in queue_names() if names is None else names:
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except conn.channel_errors as exc:
                    if getattr(exc, "reply_code", None) != 404 and "NOT_FOUND" not in str(exc):
                        raise
                    depths[name] = 0
                    if own:
                        channel = _reopen(conn, channel)
            if own:
                _close(channel)
        except Exception:
            conn.collect()  # not back to the pool broken: the next reading connects anew
            raise
    return depths


def _reopen(conn, channel):
    _close(channel)
    return conn.channel()


def _close(channel) -> None:
    with contextlib.suppress(Exception):  # closing what the broker closed already
        channel.close()
