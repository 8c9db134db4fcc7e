from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from kombu.utils.url import maybe_sanitize_url

from operations import backlog
from operations.brokers import queue_depths
from operations.health import readiness


class Command(BaseCommand):
    help = ("Print health (database, broker, cache, beat) and the backlog (events pending "
            "routing, queue depths, digest items, webhook endpoints). Exits with 1 when "
            "anything is not ready, as /readyz answers 503.")

    def handle(self, *args, **options):
        checks = readiness()
        write = self.stdout.write
        write(f"Datafi status at {timezone.now():%Y-%m-%d %H:%M:%S} UTC")
        write(f"broker {maybe_sanitize_url(settings.CELERY_BROKER_URL)}")
        write("")
        write("Health")
        for check in checks:
            state = self.style.SUCCESS("ok") if check.ok else self.style.ERROR("FAILING")
            write(f"  {check.name:<10} {state:<7} {check.detail}")
        write("")
        write("Backlog")
        rows = []
        try:
            outbox = backlog.outbox_pending()
            rows.append(("events pending routing", sum(outbox.values()), outbox))
            digests = backlog.digest_pending()
            for bucket, channels in digests.items():
                rows.append((f"digest items, {bucket}", sum(channels.values()), channels))
            endpoints = backlog.webhook_endpoint_states()
            rows.append(("webhook endpoints", sum(endpoints.values()), endpoints))
        except Exception as exc:  # the database is down: the health above says so
            write(f"  (no figures from the database: {type(exc).__name__})")
        try:
            depths = queue_depths()
            rows.insert(1, ("queued messages", sum(depths.values()), depths))
        except Exception as exc:
            write(f"  (no queue depths from the broker: {type(exc).__name__})")
        for label, total, parts in rows:
            detail = ", ".join(f"{key} {n:,}" for key, n in parts.items())
            write(f"  {label:<24} {total:>8,}   {detail}")
        if not all(check.ok for check in checks):
            failing = ", ".join(check.name for check in checks if not check.ok)
            self.stderr.write(f"not ready: {failing}")
            raise SystemExit(1)
