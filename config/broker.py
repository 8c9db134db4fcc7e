"""The embedded default's broker: kombu's filesystem transport, safe for several processes.

``bin/serve`` with nothing configured runs six processes on one folder of message files
(``var/broker``). kombu's own transport has two races there, and either one stops the whole
service, because a worker that dies takes the Procfile runner down with it:

- A message file is created empty and then written. A consumer polling at that moment
  claims it, reads nothing, and the worker crashes on the JSON error (the message is lost).
  Here a message is written under a name no consumer looks at (``.part``) and renamed into
  place, so a consumer sees a whole message or none.
- A broadcast exchange's table (``control/<exchange>.exchange``) is created by truncating
  open, so workers starting together can leave it empty or half-overwritten, and every
  reader crashes on it. Here the table is opened without truncation and read and rewritten
  under its lock; an empty table is an empty list.

A consumer claims a message by renaming it into the processed folder, which is on the same
file system (both under ``var/broker``): one rename, so exactly one consumer wins. kombu
moves it to the system temp folder instead, a copy and a delete when that is another file
system. A file that is not a message (written by hand, or by another version's publisher
that crashed mid-write) is set aside as ``<name>.unreadable`` in the processed folder with
an error in the log, and the worker goes on to the next message.

Selected by ``CELERY_BROKER_TRANSPORT`` in the settings when the broker URL is
``filesystem://``; Redis and RabbitMQ are unaffected.
"""

import logging
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".part"
UNREADABLE_SUFFIX = ".unreadable"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            with open(path + PARTIAL_SUFFIX, "wb") as partial:
                partial.write(str_to_bytes(dumps(payload)))
            os.replace(path + PARTIAL_SUFFIX, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.processed_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            try:
                with open(claimed, "rb") as file:
                    message = loads(bytes_to_str(file.read()))
            except ValueError as exc:
                logger.error("broker: %s in queue %r is not a message (%s); set aside as %s",
                             name, queue, exc, claimed + UNREADABLE_SUFFIX)
                os.replace(claimed, claimed + UNREADABLE_SUFFIX)
                continue
            if not self.store_processed:
                os.remove(claimed)
            return message
        raise Empty()

    def get_table(self, exchange):
        try:
            with self._exchange_file(exchange).open("rb") as file:
                filesystem.lock(file, filesystem.LOCK_SH)
                try:
                    return self._read_table(file)
                finally:
                    filesystem.unlock(file)
        except FileNotFoundError:
            return []

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda table: table if binding in table
                           else [binding, *table])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if self._exchange_file(exchange).exists():
            self._change_table(exchange, lambda table: [b for b in table if b != binding])

    @staticmethod
    def _read_table(file) -> list:
        data = file.read()
        return [filesystem.exchange_queue_t(*b) for b in loads(bytes_to_str(data))] \
            if data.strip() else []

    def _change_table(self, exchange, change) -> None:
        """Read, change and rewrite an exchange's table under its lock, never truncating first."""
        path = self._exchange_file(exchange)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "rb+",
                           buffering=0) as file:
                filesystem.lock(file, filesystem.LOCK_EX)
                try:
                    table = self._read_table(file)
                    changed = change(table)
                    if changed != table:
                        file.seek(0)
                        file.write(str_to_bytes(dumps(changed)))
                        file.truncate()
                finally:
                    filesystem.unlock(file)
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
