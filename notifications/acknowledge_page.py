"""The page a critical or high email's Acknowledge link opens.

A GET only shows what would be acknowledged and a button (mail scanners and link previews
follow links; none of them may acknowledge); the button's POST acknowledges, for everyone
the event went to. No sign-in: the signed link is the credential, for 7 days
(``events.ack_links``). A tampered or expired link gets a page that says so, and how to
acknowledge instead.
"""

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from events.ack_links import LinkError, delivery_id_from

from .in_app import event_title
from .models import Delivery
from .services.incidents import delivery_acknowledge

TEMPLATE = "web/acknowledge.html"


@require_http_methods(["GET", "HEAD", "POST"])
def acknowledge_page(request, token):
    try:
        delivery_id = delivery_id_from(token)
    except LinkError as error:
        return render(request, TEMPLATE, {"problem": error.message, "expired": error.expired},
                      status=410 if error.expired else 400)
    delivery = (Delivery.objects.select_related("event__event_type", "event__workspace",
                                                "user")
                .filter(pk=delivery_id, event__isnull=False).first())
    if delivery is None:
        return render(request, TEMPLATE, {"problem": "This event is no longer kept: it was "
                                                     "removed after the retention period."},
                      status=404)
    acknowledged_now = False
    if request.method == "POST":
        acknowledged_now = delivery_acknowledge(delivery=delivery)
        delivery.event.refresh_from_db()
    event = delivery.event
    return render(request, TEMPLATE, {
        "event": event, "title": event_title(event), "acknowledged_now": acknowledged_now,
        "who": delivery.user.get_username() if delivery.user else delivery.target})
