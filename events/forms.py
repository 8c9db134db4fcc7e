"""The sign-in forms of the app's page and of the admin, under the sign-in limit.

Both pages are Django's ``LoginView`` with one of these forms; ``signin_page_response``
turns a page whose form was refused for too many attempts into a 429 with ``Retry-After``.
"""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from events.exceptions import SigninThrottled
from events.signin import signin_attempt


class SigninLimitMixin:
    """For an ``AuthenticationForm``: each attempt with a username and a password counts
    against the sign-in limit (``events.signin``). Over it the form is refused with the
    limit's message and ``retry_after`` set, and the password is not checked."""

    #: Seconds until signing in is allowed again, when the form was refused for the limit.
    retry_after: int | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()  # nothing to check a password against
        try:
            with signin_attempt(request=self.request, username=username):
                return super().clean()
        except SigninThrottled as refused:
            self.retry_after = refused.retry_after
            raise ValidationError(refused.message, code="signin_throttled") from None


class SigninForm(SigninLimitMixin, AuthenticationForm):
    """The app's sign-in page (``/accounts/login/``): any active user."""


class AdminSigninForm(SigninLimitMixin, AdminAuthenticationForm):
    """The admin's sign-in page (``/admin/login/``): active staff users."""


def signin_page_response(response):
    """``response`` (a sign-in page's) as a 429 with ``Retry-After`` when its form was
    refused for too many attempts; otherwise unchanged."""
    form = (getattr(response, "context_data", None) or {}).get("form")
    retry_after = getattr(form, "retry_after", None)
    if retry_after:
        response.status_code = 429
        response["Retry-After"] = str(retry_after)
    return response
