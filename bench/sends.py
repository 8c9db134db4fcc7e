"""Issue 21's rows: the send paths, measured from outside, each beside its floor.

``bin/bench --only sends``. The Procfile's workers at their default concurrency (urgent,
sender, worker, webhooks: two processes each) send to receivers in processes of their own
(bench/receivers.py): aiosmtpd, plain and STARTTLS + AUTH with a self-signed certificate
made here (trusted through ``SSL_CERT_FILE`` in the workers' environment), and a bare
HTTP/1.1 keep-alive server. A message counts when the receiver has it (the end of DATA,
the end of a POST's body), timed by the receiver on the clock the bench reads, so what is
measured is the product's whole path and nothing of how it sends is assumed. The latency
floor is a pair of workers of bench/floor_app.py (two Celery hops, an insert, a send over
a kept connection). Everything started here is stopped however the part ends.
"""

import datetime
import ipaddress
import re
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import requests
from django.conf import settings
from django.db import connection, transaction
from run import (
    CRITICAL,
    MEDIUM,
    ROOT,
    Processes,
    Readable,
    make_workspace,
    ms,
    pct,
    row,
    wipe_routing_output,
)

from channels_app.services.email import email_settings_update
from channels_app.services.webhooks import webhook_endpoint_save
from channels_app.webhooks.signing import sign
from config.celery import app
from events.models import Event, EventType
from events.services.emit import event_emit
from notifications.models import Delivery, Notification
from notifications.services.rules import routing_rule_delete, routing_rule_set

MEMBERS = 1000  # an email fan-out's audience
EVENTS = 1000  # critical events to one webhook endpoint
FANOUT = 10_000  # an in-app fan-out's audience
SAMPLES = 100  # latency samples, idle and (at least, time allowing) under load
DRAIN = 2000  # medium events of each load round
LOAD_SECONDS = 60  # load rounds start until there are SAMPLES probes or this has passed
PROBE_INTERVAL = 0.2  # seconds between probes under load (a few sends a second)
FROM = "alerts@example.com"
USERNAME, PASSWORD = "bench", "bench-password"
SECRET = "bench-webhook-secret"
FLOOR_URGENT, FLOOR_DELIVERIES = "bench_floor_urgent", "bench_floor_deliveries"


class Arrivals(NamedTuple):
    count: int
    first: float  # time.monotonic() of the first arrival
    last: float  # of the awaited one
    size: int  # mean bytes


class Receiver:
    """One bench/receivers.py process; ``stop`` ends it."""

    def __init__(self, kind, *args):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "receivers.py"), kind, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self.process.stdout.readline()
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"receivers.py {kind} did not start")
        self.port = int(line.split()[1])

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("a receiver ended")
        return answer.strip()

    def watch(self, name: str, text: str = "") -> None:
        """Count, under ``name``, what arrives from now whose recipients or body hold text."""
        self.ask(f"watch {name} {text}")

    def wait(self, name: str, count: int, timeout: float = 300) -> Arrivals:
        """Once ``count`` arrived under ``name``; raises if they do not within ``timeout``."""
        got, first, last, size = self.ask(f"wait {name} {count} {timeout}").split()
        arrivals = Arrivals(int(got), float(first), float(last), int(size))
        if arrivals.count < count:
            raise RuntimeError(f"{name}: {arrivals.count} of {count} arrived in {timeout} s")
        return arrivals

    def when(self, marker: str, timeout: float = 300) -> float:
        """When the first message holding ``marker`` arrived; raises if none within
        ``timeout``."""
        arrived = float(self.ask(f"when {marker} {timeout}"))
        if arrived < 0:
            raise RuntimeError(f"nothing holding {marker} arrived in {timeout} s")
        return arrived

    def count(self, name: str) -> int:
        return int(self.ask(f"wait {name} 1 0").split()[0])

    def connections(self) -> int:
        return int(self.ask("stats").split()[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


def procfile_workers() -> list[tuple[str, str, int, int]]:
    """The Procfile's Celery workers: (name, queues, default concurrency, niceness) each."""
    workers = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if re.match(r"\s*(nice -n \d+ )?celery -A config worker ", command):
            queues = re.search(r"--queues (\S+)", command).group(1)
            concurrency = re.search(r"--concurrency \$\{\w+:-(\d+)\}", command).group(1)
            nice = re.match(r"\s*nice -n (\d+) ", command)
            workers.append((name, queues, int(concurrency), int(nice.group(1)) if nice else 0))
    return workers


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1: (certificate, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "bench-smtp.pem", directory / "bench-smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def email_bytes(to: str, size: int) -> bytes:
    """A plain-text message to ``to`` of about ``size`` bytes."""
    head = (f"From: Datafi <{FROM}>\r\nTo: {to}\r\nSubject: Connection lost: bench\r\n"
            f"Message-ID: <{uuid.uuid4()}@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n")
    line = "x" * 76 + "\r\n"
    left = max(0, size - len(head))
    return (head + (line * (left // len(line) + 1))[:left]).encode()


def webhook_body(marker: str, size: int) -> bytes:
    """A JSON body holding ``marker``, of about ``size`` bytes."""
    head = f'{{"marker": "{marker}", "pad": "'
    return (head + "x" * max(0, size - len(head) - 2) + '"}').encode()


def latency_row(what, samples, floor, target, factor):
    """A latency row; the ratio is the p99 over the floor's p99 (and the medians')."""
    p99, floor_p99 = pct(samples, 99), pct(floor, 99)
    row(f"{what}, {len(samples)} samples",
        f"median {ms(statistics.median(samples))}, p99 {ms(p99)}",
        f"two Celery hops + insert + send over a kept connection: median "
        f"{ms(statistics.median(floor))}, p99 {ms(floor_p99)}",
        f"p99 x{p99 / floor_p99:.2f} (median x"
        f"{statistics.median(samples) / statistics.median(floor):.2f})",
        f"p99 <= {factor}x the floor's{target}")


class Sends:
    """The part's receivers, workers and fixtures, and the measurements on them."""

    def __init__(self, directory: Path, log_dir: Path):
        self.cert, key = make_certificate(directory)
        self.processes = Processes(log_dir)
        db = connection.settings_dict
        self.dsn = (f"host={db['HOST']} port={db['PORT'] or 5432} "
                    f"user={db['USER'] or 'postgres'} dbname={db['NAME']}")
        self.processes.env.update(SSL_CERT_FILE=str(self.cert), BENCH_FLOOR_DSN=self.dsn)
        self.key = key
        self.receivers = []
        self.sizes = {}  # "email" / "webhook" -> the product's mean message size
        self.markers = 0
        self.probes, (member,) = make_workspace("sends-probe", 1)  # latency probes' audience
        self.member = member.email

    def receiver(self, *args) -> Receiver:
        receiver = Receiver(*args)
        self.receivers.append(receiver)
        return receiver

    def stop(self) -> None:
        self.processes.stop_all()
        for receiver in self.receivers:
            receiver.stop()

    def marker(self, tag: str) -> str:
        self.markers += 1
        return f"~{tag}{self.markers}~"

    def use_smtp(self, tls: bool) -> Receiver:
        """The email settings pointed at the plain or the STARTTLS + AUTH receiver."""
        receiver = self.smtp_tls if tls else self.smtp
        email_settings_update(values={
            "host": "127.0.0.1", "port": receiver.port, "from_email": FROM, "enabled": True,
            "encryption": "starttls" if tls else "none", "username": USERNAME if tls else "",
            "password": PASSWORD})
        return receiver

    def start(self) -> None:
        """The receivers, the webhook endpoint and the workers (``stop`` ends them)."""
        self.smtp = self.receiver("smtp")
        self.smtp_tls = self.receiver("smtp", "--cert", str(self.cert), "--key", str(self.key),
                                      "--auth", f"{USERNAME}:{PASSWORD}")
        self.http = self.receiver("http")
        self.url = f"http://127.0.0.1:{self.http.port}/hook"
        webhook_endpoint_save(values={"name": "bench", "url": self.url, "secret": SECRET})
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_floor_send (id bigserial PRIMARY KEY, "
                           "channel text NOT NULL, marker text NOT NULL, "
                           "created_at timestamptz NOT NULL DEFAULT now())")
        for name, queues, concurrency, nice in procfile_workers():
            self.processes.worker(f"sends-{name}", queues, concurrency, nice=nice)
        for queue in (FLOOR_URGENT, FLOOR_DELIVERIES):
            self.processes.start(queue, [
                sys.executable, "-m", "celery", "-A", "bench.floor_app", "worker",
                "-n", f"{queue}@%h", "--queues", queue, "--concurrency", "1",
                "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                "--without-heartbeat"], "ready.")

    # --- latency ---------------------------------------------------------------------------

    def probe(self, smtp: Receiver, webhook=True):
        """One critical emit to the probe workspace (one member): seconds until the member
        has the email and (with ``webhook``) until the endpoint has the POST."""
        marker = self.marker("probe")
        started = time.monotonic()
        event_emit(CRITICAL, workspace=self.probes.public_id,
                   payload={"datasource_name": marker})
        email = smtp.when(marker) - started
        return email, (self.http.when(marker) - started) if webhook else None

    def floor_sample(self, channel: str, smtp: Receiver | None = None) -> float:
        marker = self.marker("floor")
        job = {"channel": channel, "marker": marker}
        if channel == "email":
            address = f"{marker.strip('~')}@example.com"
            job.update(marker=address, data=email_bytes(address, self.sizes["email"]).decode(),
                       smtp={"host": "127.0.0.1", "port": smtp.port, "from": FROM,
                             **({"username": USERNAME, "password": PASSWORD}
                                if smtp is self.smtp_tls else {})})
            receiver, text = smtp, address
        else:
            job.update(url=self.url, secret=SECRET,
                       data=webhook_body(marker, self.sizes["webhook"]).decode())
            receiver, text = self.http, marker
        receiver.watch("floor", text)
        started = time.monotonic()
        app.send_task("bench_floor.route", kwargs=job, queue=FLOOR_URGENT, retry=False)
        return receiver.wait("floor", 1, timeout=60).last - started

    def floor_samples(self, channel, smtp=None):
        for _ in range(5):  # the floor workers' connections opened
            self.floor_sample(channel, smtp)
        return [self.floor_sample(channel, smtp) for _ in range(SAMPLES)]

    def latency(self):
        smtp = self.use_smtp(tls=False)
        for _ in range(5):  # every worker process warm
            self.probe(smtp)
        smtp.watch("probes", self.member)
        self.http.watch("probes", "~probe")
        samples = [self.probe(smtp) for _ in range(SAMPLES)]
        self.sizes = {"email": smtp.wait("probes", SAMPLES).size,
                      "webhook": self.http.wait("probes", SAMPLES).size}
        email_idle = [email for email, _ in samples]
        hook_idle = [hook for _, hook in samples]
        email_floor = self.floor_samples("email", smtp)
        hook_floor = self.floor_samples("webhook")
        latency_row("critical emit -> email received (plain SMTP), 1 member, idle",
                    email_idle, email_floor, "", 2)
        latency_row("critical emit -> webhook POST received, idle (the same emits)",
                    hook_idle, hook_floor, "", 2)

        email_load, hook_load, rounds = self.under_load(smtp)
        what = (f"while a {MEMBERS:,}-member critical email fan-out and a {DRAIN:,}-event "
                f"medium drain run ({rounds} round{'s' if rounds > 1 else ''}; a probe every "
                f"{ms(PROBE_INTERVAL)}, not waiting for the last)")
        latency_row(f"critical emit -> email received, {what}", email_load, email_floor,
                    " (idle)", 3)
        latency_row(f"critical emit -> webhook POST received, {what}", hook_load, hook_floor,
                    " (idle)", 3)

    def under_load(self, smtp):
        """Probes emitted at a steady pace, whatever their latency, while load rounds run:
        each round emits DRAIN medium events (10 members) and a critical event to MEMBERS
        members, and lasts until both are done. Rounds start until SAMPLES probes were
        emitted or LOAD_SECONDS passed. Returns (email latencies, webhook latencies,
        rounds)."""
        lane, _ = make_workspace("sends-lane", 10)
        crowd, _ = make_workspace("sends-crowd", MEMBERS)
        pending = Event.objects.filter(status="pending", priority="medium")
        probes, rounds = [], 0  # (marker, emitted at)
        started = time.monotonic()
        while len(probes) < SAMPLES and (not rounds or time.monotonic() - started < LOAD_SECONDS):
            rounds += 1
            with transaction.atomic():
                for i in range(DRAIN):
                    event_emit(MEDIUM, workspace=lane.public_id,
                               payload={"query_name": f"r{rounds}-q{i}"})
            smtp.watch("crowd", "sends-crowd-")
            event_emit(CRITICAL, workspace=crowd.public_id,
                       payload={"datasource_name": self.marker("crowd")})
            due = time.monotonic()
            while smtp.count("crowd") < MEMBERS or pending.exists():
                time.sleep(max(0.0, due - time.monotonic()))  # the pace, not a condition
                due += PROBE_INTERVAL
                marker = self.marker("probe")
                probes.append((marker, time.monotonic()))
                event_emit(CRITICAL, workspace=self.probes.public_id,
                           payload={"datasource_name": marker})
        return ([smtp.when(marker) - at for marker, at in probes],
                [self.http.when(marker) - at for marker, at in probes], rounds)

    def tls_latency(self):
        """Idle email latency over STARTTLS + AUTH, beside the floor's over it."""
        smtp = self.use_smtp(tls=True)
        for _ in range(5):
            self.probe(smtp, webhook=False)
        samples = [self.probe(smtp, webhook=False)[0] for _ in range(SAMPLES)]
        latency_row("critical emit -> email received (STARTTLS + AUTH), 1 member, idle",
                    samples, self.floor_samples("email", smtp), "", 2)

    # --- throughput --------------------------------------------------------------------------

    def smtp_floor(self, smtp: Receiver, *, reuse: bool) -> float:
        """Messages/s of one process sending MEMBERS messages with smtplib, over one
        connection or a new one each (STARTTLS and AUTH on the TLS receiver)."""
        tls = smtp is self.smtp_tls
        context = ssl.create_default_context(cafile=str(self.cert)) if tls else None
        tag = f"floor{'reused' if reuse else 'fresh'}{'tls' if tls else ''}"
        messages = [(f"{tag}-{i}@example.com",
                     email_bytes(f"{tag}-{i}@example.com", self.sizes["email"]))
                    for i in range(MEMBERS)]

        def connect():
            client = smtplib.SMTP("127.0.0.1", smtp.port, timeout=10)
            client.ehlo()
            if tls:
                client.starttls(context=context)
                client.ehlo()
                client.login(USERNAME, PASSWORD)
            return client

        smtp.watch(tag, f"{tag}-")
        started = time.monotonic()
        client = connect() if reuse else None
        for to, data in messages:
            if not reuse:
                client = connect()
            client.sendmail(FROM, [to], data)
            if not reuse:
                client.quit()
        if reuse:
            client.quit()
        return MEMBERS / (smtp.wait(tag, MEMBERS).last - started)

    def email_throughput(self, tls: bool) -> None:
        smtp = self.use_smtp(tls)
        name = f"sends-fan{'tls' if tls else 'plain'}"
        workspace, _ = make_workspace(name, MEMBERS)
        for _ in range(3):  # the settings' change seen, connections made
            self.probe(smtp, webhook=False)
        reused = self.smtp_floor(smtp, reuse=True)
        fresh = self.smtp_floor(smtp, reuse=False)
        smtp.watch("fan", f"{name}-")
        connections = smtp.connections()
        started = time.monotonic()
        event_emit(CRITICAL, workspace=workspace.public_id,
                   payload={"datasource_name": self.marker("fan")})
        elapsed = smtp.wait("fan", MEMBERS, timeout=600).last - started
        connections = smtp.connections() - connections
        rate = MEMBERS / elapsed
        kind = "STARTTLS + AUTH, self-signed CA in SSL_CERT_FILE" if tls else "plain SMTP"
        row(f"one critical event to {MEMBERS:,} members, emit -> {MEMBERS:,}th email "
            f"received ({kind}; the Procfile's workers, default concurrency)",
            f"{rate:,.0f} msgs/s ({elapsed:.2f} s, {connections:,} SMTP connections opened)",
            f"one process, smtplib, one reused connection: {reused:,.0f} msgs/s; a new "
            f"connection per message: {fresh:,.0f} msgs/s",
            f"x{rate / reused:.2f} of reused, x{rate / fresh:.2f} of per-message",
            ">= 0.7x reused")

    def webhook_throughput(self) -> None:
        workspace, _ = make_workspace("sends-hooks", 0)  # the endpoint alone is notified
        size = self.sizes["webhook"]
        session = requests.Session()
        bodies = [webhook_body(f"~floorhook{i}~", size) for i in range(EVENTS)]
        self.http.watch("floor", "~floorhook")
        started = time.monotonic()
        for i, body in enumerate(bodies):
            response = session.post(self.url, data=body, timeout=10, headers={
                "Content-Type": "application/json",
                **sign(secret=SECRET, body=body, delivery_id=str(i))})
            response.raise_for_status()
        floor = EVENTS / (self.http.wait("floor", EVENTS).last - started)
        session.close()
        capacity = self.http_capacity(size)

        self.http.watch("hooks", "~hook")
        connections = self.http.connections()
        started = time.monotonic()
        for _ in range(EVENTS):
            event_emit(CRITICAL, workspace=workspace.public_id,
                       payload={"datasource_name": self.marker("hook")})
        emitted = time.monotonic() - started
        elapsed = self.http.wait("hooks", EVENTS, timeout=600).last - started
        connections = self.http.connections() - connections
        rate = EVENTS / elapsed
        row(f"{EVENTS:,} critical events (emitted one by one, in {emitted:.2f} s) to one "
            f"webhook endpoint, first emit -> {EVENTS:,}th POST received",
            f"{rate:,.0f} posts/s ({elapsed:.2f} s: the last POST {elapsed - emitted:.2f} s "
            f"after the last emit; {connections} new connections)",
            f"one requests.Session, {EVENTS:,} signed POSTs: {floor:,.0f}/s (the receiver "
            f"alone, pipelined POSTs: {capacity:,.0f}/s)",
            f"x{rate / floor:.2f}", ">= 0.7x")

    def http_capacity(self, size: int, count: int = 2 * EVENTS) -> float:
        """POSTs/s the HTTP receiver takes: ``count`` pipelined on one connection, the
        responses read by a second thread, so the client costs next to nothing."""
        body = webhook_body("~capacity~", size)
        request = (f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                   f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        expected = count * len(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.http.port), timeout=30) as sock:
            def read():
                received = 0
                while received < expected and (chunk := sock.recv(65536)):
                    received += len(chunk)

            reader = threading.Thread(target=read)
            self.http.watch("capacity", "~capacity~")
            started = time.monotonic()
            reader.start()
            sock.sendall(request * count)
            reader.join(timeout=60)
        return count / (self.http.wait("capacity", count).last - started)

    # --- in-app fan-out ------------------------------------------------------------------------

    def in_app_fanout(self) -> None:
        critical = EventType.objects.get(key=CRITICAL)
        workspace, _ = make_workspace("sends-inapp", FANOUT)
        rule = routing_rule_set(channels=["in_app"], event_type=critical)
        readable = Readable()
        try:
            started = time.monotonic()
            event = event_emit(CRITICAL, workspace=workspace.public_id,
                               payload={"datasource_name": self.marker("inapp")})
            elapsed = self.committed(readable, event.pk, FANOUT) - started
        finally:
            readable.close()
            routing_rule_delete(rule=rule)
        floor = min(self.insert_select(workspace, critical, event) for _ in range(3))
        row(f"one critical event to {FANOUT:,} members (in-app only), emit -> every in-app "
            "notification committed", f"{elapsed:.2f} s",
            f"INSERT ... SELECT of the same rows from the memberships: {floor:.2f} s",
            f"x{elapsed / floor:.2f}", "<= 2x")

    @staticmethod
    def committed(readable: Readable, event_id, count: int) -> float:
        """When ``count`` notifications of the event are committed (time.monotonic()): the
        rows are counted at each commit that added some (its NOTIFY)."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for notify in readable.listener.notifies(timeout=1, stop_after=1):
                if notify.payload == str(event_id) and (
                        Notification.objects.filter(event_id=event_id).count() >= count):
                    return time.monotonic()
        raise RuntimeError(f"{count} notifications of event {event_id} never committed")

    @staticmethod
    def insert_select(workspace, critical, event) -> float:
        """Seconds to insert and commit, in one statement, the rows the product wrote for
        ``event`` (every column, from one of them) for another event."""
        other = Event.objects.create(event_type=critical, workspace=workspace,
                                     priority="critical", payload=event.payload,
                                     occurred_at=event.occurred_at, status="routed")
        table = Notification._meta.db_table
        columns = [f.column for f in Notification._meta.concrete_fields
                   if f.column not in ("id", "user_id", "event_id", "created_at", "updated_at")]
        copied = ", ".join(f"n.{column}" for column in columns)
        template = Notification.objects.filter(event=event).values_list("pk", flat=True)[0]
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, event_id, created_at, updated_at, "
                f"{', '.join(columns)}) SELECT m.user_id, %s, now(), now(), {copied} "
                f"FROM events_membership m CROSS JOIN (SELECT * FROM {table} WHERE id = %s) n "
                "WHERE m.workspace_id = %s ON CONFLICT DO NOTHING",
                [other.pk, template, workspace.pk])
            assert cursor.rowcount == FANOUT, cursor.rowcount
        elapsed = time.monotonic() - started
        other.delete()
        return elapsed


def settle(seconds: float = 120) -> None:
    """Once no critical send is pending or under way (rows the bench is about to delete)."""
    deadline = time.monotonic() + seconds
    while Delivery.objects.filter(priority="critical", status__in=["pending", "sending"]).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"critical sends still pending after {seconds} s")
        time.sleep(0.05)


def bench_sends(log_dir: Path) -> None:
    """Every row of the part; the receivers and workers it starts are stopped at the end."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the loopback receiver
    with tempfile.TemporaryDirectory() as directory:
        sends = Sends(Path(directory), log_dir)
        try:
            sends.start()
            sends.latency()
            settle()
            wipe_routing_output()
            sends.email_throughput(tls=False)
            sends.email_throughput(tls=True)
            sends.tls_latency()
            sends.webhook_throughput()
            settle()
            wipe_routing_output()
            sends.in_app_fanout()
        finally:
            sends.stop()
            settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = allow_private
