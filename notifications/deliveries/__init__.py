"""The delivery pipeline: every send to an external channel (email, webhooks, plug-ins).

Rows first, network later. Routing and digest flushes only write pending deliveries and,
once their transaction has committed, enqueue one ``delivery_send`` task per delivery on
its channel's queue (``ChannelBackend.queue`` for critical and high, ``batched_queue``
for digests and batched priorities): ``enqueue``.

One attempt of a send (``send``):

1. claim: a conditional UPDATE pending -> sending (attempts + 1), plus an attempt row,
   committed before anything leaves the process; a row that is not pending, not due or
   already delivered is left alone, so duplicate tasks do nothing;
2. render and send the message with no transaction open (a slow SMTP server or webhook
   never holds a database lock or connection in a transaction);
3. record the outcome on the attempt and the delivery: delivered; a transient error goes
   back to pending with ``next_attempt_at`` (exponential backoff, bounded jitter) and a
   task enqueued with that countdown; a permanent error, or the last attempt, fails.

``sweep.delivery_sweep`` (beat, every 30 s) finds what a lost message or a dead worker
left behind: pending deliveries overdue by a grace period, deliveries whose channel has
just become ready, and ``sending`` rows older than ``DATAFI_SENDING_TIMEOUT_SECONDS``.
``manual`` retries and replays by hand. Receivers can drop duplicates: every attempt
carries the same delivery id (the email Message-ID is derived from it).
"""
