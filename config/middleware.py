"""Project-wide request guards."""

from django.http import HttpResponseBadRequest, JsonResponse

NUL = "\x00"
NUL_MESSAGE = "NUL characters (%00) are not allowed in URLs."


class RefuseNulInUrlMiddleware:
    """Answer 400 to a URL whose path or query string holds a NUL character.

    No URL of this service has one, and one reaching a lookup or filter makes PostgreSQL
    refuse the query (a 500). Checked once here instead of in every view and filter.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path or any(
            NUL in key or any(NUL in value for value in values)
            for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE)
        return self.get_response(request)
