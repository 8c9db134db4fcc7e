"""The app's pages. Thin on purpose: each renders a template whose scripts read and change
everything through the REST API (session auth + CSRF), the same code path as API clients.
The pages only carry reference data: priority labels, category names, event type labels;
the preferences page also the time zones and the user's own workspaces (its mute form's
choices).
"""

import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView
from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView, TemplateView

from events.catalog import Priority
from events.forms import SigninForm, signin_page_response
from events.models import Category, EventType, Workspace


class AppPage(LoginRequiredMixin, TemplateView):
    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "app_config": {
                # Colors come from priority-colors.css, by each badge's data-priority.
                "priorities": [
                    {"value": value, "label": label} for value, label in Priority.CHOICES
                ],
                "categories": [
                    {"slug": slug, "name": name}
                    for slug, name in Category.objects.order_by("position", "slug")
                    .values_list("slug", "name")
                ],
                "event_types": [
                    {"key": key, "label": label, "category": category}
                    for key, label, category in EventType.objects.order_by(
                        "category__position", "category__slug", "label")
                    .values_list("key", "label", "category__slug")
                ],
                "poll_ms": round(settings.DATAFI_BELL_POLL_SECONDS * 1000),
            },
        }


class HomeView(RedirectView):
    pattern_name = "notification-center"


class NotificationCenterView(AppPage):
    template_name = "web/notifications.html"


class NotificationDetailView(AppPage):
    template_name = "web/notification_detail.html"


class PreferencesView(AppPage):
    template_name = "web/preferences.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["app_config"].update(
            time_zones=time_zone_choices(),
            workspaces=[{"id": public_id, "name": name} for public_id, name in
                        Workspace.objects.filter(memberships__user=self.request.user)
                        .order_by("name", "public_id").values_list("public_id", "name")])
        return context


#: The regions of the IANA names people pick from (the rest are aliases: "US/Eastern",
#: "Etc/GMT+5", ...; a stored alias is still shown, and accepted, as such).
ZONE_REGIONS = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/",
                "Australia/", "Europe/", "Indian/", "Pacific/")


@cache
def time_zone_choices() -> list[str]:
    """The time zones the preferences page offers: every region's zone (``tzdata``), and
    UTC first."""
    return ["UTC", *sorted(name for name in zoneinfo.available_timezones()
                           if name.startswith(ZONE_REGIONS))]


class SigninView(LoginView):
    """The app's sign-in page, under the sign-in limit: over it a 429 with the message."""

    authentication_form = SigninForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        return signin_page_response(super().form_invalid(form))


@require_safe
@cache_control(public=True, max_age=3600)
def priority_colors_css(request):
    """The priority colors as a stylesheet, made from the one palette
    (``events.catalog.Priority.BADGE_COLORS``): an element with ``data-priority="high"``
    gets ``--priority-color``. The app's pages and the admin link it, so badges get their
    color from a class rule, never from a style attribute (which the CSP refuses)."""
    rules = [f'[data-priority="{priority}"] {{ --priority-color: {color}; }}'
             for priority, color in Priority.BADGE_COLORS.items()]
    return HttpResponse("\n".join(["/* events.catalog.Priority.BADGE_COLORS */", *rules, ""]),
                        content_type="text/css; charset=utf-8")
