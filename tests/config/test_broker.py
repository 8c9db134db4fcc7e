"""The embedded default's broker (config/broker.py): several processes on one message folder.

Each connection here is its own kombu connection on a folder of this test's, as each process
of ``bin/serve`` has; they run in threads so a publisher and a consumer really overlap. Each
test names its own queues: kombu keeps declared bindings in memory for the whole process.
"""

import itertools
import json
import logging
import threading

import kombu
import pytest
from django.conf import settings

from tests.support import run_concurrently

TRANSPORT = "config.broker:Transport"


@pytest.fixture
def folder(tmp_path):
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    return tmp_path


def connect(folder) -> kombu.Connection:
    return kombu.Connection("filesystem://", transport=TRANSPORT, transport_options={
        "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"), "control_folder": str(folder / "control"),
        "store_processed": False, "polling_interval": 0.01,
    })


def test_the_settings_select_it_for_the_filesystem_broker():
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert settings.CELERY_BROKER_TRANSPORT == TRANSPORT
    else:
        assert not hasattr(settings, "CELERY_BROKER_TRANSPORT")


def test_a_consumer_polling_during_a_publish_gets_whole_messages_only(folder):
    """kombu's own transport creates the file, then writes it: a consumer polling between the
    two reads an empty or half message, raises, and the worker dies with the message lost."""
    blob = "x" * (8 << 20)  # each write takes long enough for many polls to fall inside it
    received, errors, published = [], [], threading.Event()

    def consume():
        with connect(folder) as connection:
            queue = connection.SimpleQueue("whole")
            try:
                while len(received) < 5:
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        if published.is_set() and not any((folder / "queue").iterdir()):
                            return
                        continue
                    received.append(message.payload)
                    message.ack()
            except Exception as exc:  # reported below, by the test's thread
                errors.append(exc)

    with connect(folder) as connection:
        queue = connection.SimpleQueue("whole")
        consumer = threading.Thread(target=consume)
        consumer.start()
        try:
            for n in range(5):
                queue.put({"n": n, "blob": blob})
        finally:
            published.set()
            consumer.join(timeout=120)

    assert not errors, errors
    assert [(m["n"], len(m["blob"])) for m in received] == [(n, len(blob)) for n in range(5)]
    assert not list((folder / "queue").iterdir()) and not list((folder / "processed").iterdir())


def test_a_file_that_is_not_a_message_is_set_aside_and_the_next_one_delivered(folder, caplog):
    with connect(folder) as connection:
        queue = connection.SimpleQueue("aside")
        queue.put({"n": 1})
        (folder / "queue" / "0_half-written.aside.msg").write_text('{"body": "eyJu')

        with caplog.at_level(logging.ERROR, logger="config.broker"):
            message = queue.get(timeout=30)

        assert message.payload == {"n": 1}
        message.ack()
    kept = folder / "processed" / "0_half-written.aside.msg.unreadable"
    assert kept.read_text() == '{"body": "eyJu'  # kept for whoever looks into it
    assert "0_half-written.aside.msg in queue 'aside' is not a message" in caplog.text
    assert str(kept) in caplog.text


def test_workers_starting_together_all_get_broadcasts(folder):
    """Each worker binds its own queue to the broadcast exchange (Celery's remote control)
    when it starts; kombu's own transport creates the table by truncating it, so binds at the
    same moment leave it empty or half-written, and every reader then fails on it."""
    broadcast = kombu.Exchange("control", type="fanout", auto_delete=False)

    def bind(n):
        with connect(folder) as connection:
            kombu.Queue(f"worker{n}", broadcast).bind(connection.default_channel).declare()
        return n

    numbers = itertools.count()
    names = run_concurrently(lambda: bind(next(numbers)), times=8)

    with connect(folder) as connection:
        with connection.Producer() as producer:
            producer.publish({"ping": True}, exchange=broadcast, declare=[broadcast])
        table = json.loads((folder / "control" / "control.exchange").read_text())
        assert sorted(queue for _, _, queue in table) == sorted(f"worker{n}" for n in names)
        for n in names:
            message = connection.SimpleQueue(f"worker{n}", no_ack=True).get(timeout=30)
            assert message.payload == {"ping": True}
