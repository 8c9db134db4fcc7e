"""Probes answered before anything else of the request pipeline.

Placed first in ``MIDDLEWARE``: a Kubernetes probe or a Prometheus scrape reaches a pod by
its IP address (a ``Host`` that ``ALLOWED_HOSTS`` does not list) and over plain HTTP (which
``DATAFI_HTTPS`` would redirect); neither needs a session or the CSRF machinery. Only these
exact paths, GET or HEAD; anything else goes on down the stack.
"""

from django.http import HttpResponseNotAllowed

from . import views

PROBES = {"/healthz": views.healthz, "/readyz": views.readyz, "/metrics": views.metrics}


class ProbeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = PROBES.get(request.path_info)
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        response = view(request)
        response["Cache-Control"] = "no-store"
        return response
