"""API permissions that ask what the admin asks: staff status and the model permission."""

from rest_framework import permissions


class StaffModelPermissions(permissions.DjangoModelPermissions):
    """Staff holding the view/add/change/delete permission of the view's model."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_staff) and super().has_permission(
            request, view
        )


def staff_with(*, read: tuple[str, ...] = (), write: tuple[str, ...] = (),
               public_read: bool = False):
    """A permission class: staff with ``read`` perms for safe methods, ``write`` otherwise.

    ``public_read`` lets any authenticated user read.
    """

    class StaffWith(permissions.BasePermission):
        def has_permission(self, request, view):
            user = request.user
            if not (user and user.is_authenticated):
                return False
            needed = read if request.method in permissions.SAFE_METHODS else write
            # Set per request (DRF makes one instance per request): the 403 names what
            # this method needs, the view permission for a read.
            self.message = "You do not have the permissions this needs: " + ", ".join(
                ("staff status", *needed)
            )
            if request.method in permissions.SAFE_METHODS:
                return public_read or (user.is_staff and user.has_perms(read))
            return user.is_staff and user.has_perms(write)

    return StaffWith
