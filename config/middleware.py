"""Project-wide request guards."""

from django.http import HttpResponseBadRequest, JsonResponse

NUL = "\x00"
NUL_MESSAGE = "NUL characters (%00) are not allowed in URLs."


class RefuseNulInUrlMiddleware:
    """Answer 400 to a URL whose path or query string holds a NUL character; one in a
    query parameter's value is named (``{"cursor": [...]}``), as the API names a field.

    No URL of this service has one, and one reaching a lookup or filter makes PostgreSQL
    refuse the query (a 500). Checked once here instead of in every view and filter.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path or any(NUL in key for key in request.GET):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE)
        named = [key for key, values in request.GET.lists() if any(NUL in v for v in values)]
        if named:  # in a parameter's value: the answer names the parameter
            if request.path.startswith("/api/"):
                return JsonResponse({key: [NUL_MESSAGE] for key in named}, status=400)
            return HttpResponseBadRequest(f"{named[0]}: {NUL_MESSAGE}")
        return self.get_response(request)
