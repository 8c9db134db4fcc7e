"""The latency floor of bench/sends.py: two Celery hops, an insert and a send, no more.

    celery -A bench.floor_app worker --queues bench_floor_urgent ...
    celery -A bench.floor_app worker --queues bench_floor_deliveries ...

``bench_floor.route`` (on ``bench_floor_urgent``, as routing is on ``urgent``) enqueues
``bench_floor.send`` (on ``bench_floor_deliveries``), which inserts one row in autocommit
(``BENCH_FLOOR_DSN``, a libpq connection string) and sends one message: over an SMTP
connection each worker process keeps (per server; STARTTLS and AUTH done once, trusting
what ``SSL_CERT_FILE`` names), or as a signed POST over a keep-alive ``requests.Session``. The
broker is ``CELERY_BROKER_URL``, with the product's settings for messages (JSON, acks late,
a prefetch of 1, no results). No Django here.
"""

import os
import smtplib
import ssl

import psycopg
import requests
from celery import Celery

from channels_app.webhooks.signing import sign

app = Celery("bench_floor", broker=os.environ["CELERY_BROKER_URL"], set_as_current=False)
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                task_acks_late=True, worker_prefetch_multiplier=1,
                worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)

URGENT, DELIVERIES = "bench_floor_urgent", "bench_floor_deliveries"
TABLE = "bench_floor_send"

_database = None
_smtp = {}  # (host, port) -> a connection kept open
_session = None


@app.task(name="bench_floor.route")
def route(**job):
    send.apply_async(kwargs=job, queue=DELIVERIES)


@app.task(name="bench_floor.send")
def send(*, channel, marker, smtp=None, url=None, secret="", data=None):
    global _database, _session
    if _database is None:
        _database = psycopg.connect(os.environ["BENCH_FLOOR_DSN"], autocommit=True)
    _database.execute(f"INSERT INTO {TABLE} (channel, marker) VALUES (%s, %s)",
                      (channel, marker))
    if channel == "email":
        connection = _smtp.get((smtp["host"], smtp["port"]))
        if connection is None:
            connection = smtplib.SMTP(smtp["host"], smtp["port"], timeout=10)
            connection.ehlo()
            if smtp.get("username"):
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
                connection.login(smtp["username"], smtp["password"])
            _smtp[(smtp["host"], smtp["port"])] = connection
        connection.sendmail(smtp["from"], [marker], data.encode())
    else:
        if _session is None:
            _session = requests.Session()
        body = data.encode()
        response = _session.post(url, data=body, timeout=10, headers={
            "Content-Type": "application/json",
            **sign(secret=secret, body=body, delivery_id=marker)})
        response.raise_for_status()
