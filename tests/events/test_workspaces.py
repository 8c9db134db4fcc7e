"""Workspaces and members from the command line and over staff REST."""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from events.models import Membership, Workspace
from tests.support import api_client_for

WORKSPACES_URL = "/api/workspaces/"


def members_of(workspace_id: str) -> dict[str, str]:
    return dict(Membership.objects.filter(workspace__public_id=workspace_id)
                .values_list("user__username", "role"))


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- commands -----------------------------------------------------------------------------

def test_create_workspace_with_id_and_members(make_user):
    make_user("ann")
    make_user("bob")

    output = run("create_workspace", "Data team", "--id", "ws_data",
                 "--member", "ann:owner", "--member", "bob")

    assert "Created workspace ws_data ('Data team')" in output
    assert Workspace.objects.get(public_id="ws_data").name == "Data team"
    assert members_of("ws_data") == {"ann": "owner", "bob": "member"}


def test_create_workspace_generates_an_id_it_prints(db):
    output = run("create_workspace", "Sales")

    workspace = Workspace.objects.get()
    assert workspace.public_id.startswith("ws_")
    assert workspace.public_id in output


@pytest.mark.parametrize("args, message", [
    (["--id", "ws_data"], "exists already"),
    (["--id", "data"], "is not a workspace id"),
    (["--id", "ws_Data!"], "is not a workspace id"),
    (["--member", "nobody"], "unknown user 'nobody'"),
    (["--member", "ann:boss"], "unknown role 'boss'"),
])
def test_create_workspace_refuses_and_writes_nothing(make_user, args, message):
    make_user("ann")
    Workspace.objects.create(public_id="ws_data", name="First")

    with pytest.raises(CommandError, match=message):
        call_command("create_workspace", "Second", *args)

    assert list(Workspace.objects.values_list("name", flat=True)) == ["First"]
    assert not Membership.objects.exists()


def test_a_workspace_name_is_one_line_from_the_command_line_too(db):
    with pytest.raises(CommandError, match="control characters"):
        call_command("create_workspace", "Data\nTeam")

    assert not Workspace.objects.exists()


def test_add_member_with_role(make_user):
    make_user("ann")
    Workspace.objects.create(public_id="ws_data", name="Data")

    output = run("add_member", "ws_data", "ann", "--role", "admin")

    assert "Added ann to ws_data as admin" in output
    assert members_of("ws_data") == {"ann": "admin"}


@pytest.mark.parametrize("args, message", [
    (["ws_nope", "ann"], "unknown workspace 'ws_nope'"),
    (["ws_data", "nobody"], "unknown user 'nobody'"),
    (["ws_data", "ann", "--role", "boss"], "unknown role 'boss'"),
    (["ws_data", "bob"], "'bob' is a member of ws_data already"),
])
def test_add_member_refuses(make_user, args, message):
    make_user("ann")
    bob = make_user("bob")
    workspace = Workspace.objects.create(public_id="ws_data", name="Data")
    Membership.objects.create(workspace=workspace, user=bob, role="viewer")

    with pytest.raises(CommandError, match=message):
        call_command("add_member", *args)

    assert members_of("ws_data") == {"bob": "viewer"}


def test_initial_admin_owns_the_demo_workspace_once(db):
    first = run("create_initial_admin", "--workspace", "ws_demo", "--workspace-name", "Demo")
    second = run("create_initial_admin", "--workspace", "ws_demo", "--workspace-name", "Demo")

    assert "with password: " in first
    assert "Created workspace ws_demo ('Demo') owned by 'admin'" in first
    assert "exists already" in second
    assert Workspace.objects.get().public_id == "ws_demo"
    assert members_of("ws_demo") == {"admin": "owner"}


# --- REST ---------------------------------------------------------------------------------

def test_staff_create_list_rename_and_delete_workspaces(staff_api):
    created = staff_api.post(WORKSPACES_URL, {"workspace_id": "ws_sales", "name": "Sales"},
                             format="json")
    generated = staff_api.post(WORKSPACES_URL, {"name": "Ops"}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["workspace_id"] == "ws_sales"
    assert generated.status_code == 201, generated.content
    ops_id = generated.json()["workspace_id"]
    assert ops_id.startswith("ws_") and Workspace.objects.filter(public_id=ops_id).exists()
    listed = staff_api.get(WORKSPACES_URL).json()
    assert {(w["workspace_id"], w["name"]) for w in listed} == {("ws_sales", "Sales"),
                                                                 (ops_id, "Ops")}

    renamed = staff_api.patch(f"{WORKSPACES_URL}ws_sales/", {"name": "Sales EU"}, format="json")
    assert renamed.status_code == 200, renamed.content
    assert staff_api.get(f"{WORKSPACES_URL}ws_sales/").json()["name"] == "Sales EU"

    assert staff_api.delete(f"{WORKSPACES_URL}ws_sales/").status_code == 204
    assert list(Workspace.objects.values_list("public_id", flat=True)) == [ops_id]


def test_a_workspace_id_that_is_taken_is_a_409_naming_it(staff_api):
    Workspace.objects.create(public_id="ws_taken", name="Taken")

    response = staff_api.post(WORKSPACES_URL, {"workspace_id": "ws_taken", "name": "Again"},
                              format="json")

    assert response.status_code == 409, response.content
    assert response.json() == {"detail": "workspace 'ws_taken' exists already",
                               "code": "exists", "field": "workspace_id"}
    assert Workspace.objects.count() == 1


@pytest.mark.parametrize("body, field", [
    ({"workspace_id": "sales", "name": "Sales"}, "workspace_id"),
    ({"workspace_id": "ws_UPPER", "name": "Sales"}, "workspace_id"),
    ({"workspace_id": "ws_sales"}, "name"),
    ({"workspace_id": "ws_sales", "name": "   "}, "name"),
    ({"workspace_id": "ws_sales", "name": "Sales\r\nTeam"}, "name"),
    ({"workspace_id": "ws_sales", "name": "Sales", "created_at": "2020-01-01T00:00:00Z"},
     "created_at"),
    ({"workspace_id": "ws_sales", "name": "Sales", "owner": "root"}, "owner"),
])
def test_bad_workspace_is_a_400_naming_the_field(staff_api, body, field):
    Workspace.objects.create(public_id="ws_taken", name="Taken")

    response = staff_api.post(WORKSPACES_URL, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Workspace.objects.count() == 1


def test_workspace_id_cannot_change(staff_api):
    Workspace.objects.create(public_id="ws_sales", name="Sales")

    response = staff_api.patch(f"{WORKSPACES_URL}ws_sales/", {"workspace_id": "ws_other"},
                               format="json")

    assert response.status_code == 400
    assert "workspace_id" in response.json()
    assert Workspace.objects.get().public_id == "ws_sales"


def test_staff_add_list_and_remove_members(staff_api, make_user):
    ann = make_user("ann")
    Workspace.objects.create(public_id="ws_sales", name="Sales")
    url = f"{WORKSPACES_URL}ws_sales/members/"

    added = staff_api.post(url, {"username": "ann", "role": "admin"}, format="json")
    default_role = staff_api.post(url, {"username": "root"}, format="json")
    again = staff_api.post(url, {"username": "ann"}, format="json")
    unknown = staff_api.post(url, {"username": "nobody"}, format="json")
    bad_role = staff_api.post(url, {"username": "ann", "role": "boss"}, format="json")

    assert added.status_code == 201, added.content
    assert added.json()["user_id"] == ann.pk
    assert default_role.json()["role"] == "member"
    assert unknown.status_code == bad_role.status_code == 400
    assert again.status_code == 409  # the state, not the input: a conflict naming the field
    assert again.json()["field"] == "username" and "already" in again.json()["detail"]
    assert "unknown user" in unknown.json()["username"][0]
    assert "role" in bad_role.json()
    listed = staff_api.get(url).json()
    assert [(m["username"], m["role"]) for m in listed] == [("ann", "admin"), ("root", "member")]

    assert staff_api.delete(f"{url}ann/").status_code == 204
    assert staff_api.delete(f"{url}ann/").status_code == 404
    assert members_of("ws_sales") == {"root": "member"}
    assert staff_api.get(f"{WORKSPACES_URL}ws_nope/members/").status_code == 404


@pytest.mark.parametrize("method, url, body, codename", [
    ("get", WORKSPACES_URL, None, "view_workspace"),
    ("post", WORKSPACES_URL, {"name": "New"}, "add_workspace"),
    ("patch", f"{WORKSPACES_URL}ws_sales/", {"name": "Renamed"}, "change_workspace"),
    ("delete", f"{WORKSPACES_URL}ws_sales/", None, "delete_workspace"),
    ("get", f"{WORKSPACES_URL}ws_sales/members/", None, "view_membership"),
    ("post", f"{WORKSPACES_URL}ws_sales/members/", {"username": "ann"}, "add_membership"),
    ("delete", f"{WORKSPACES_URL}ws_sales/members/bob/", None, "delete_membership"),
])
def test_staff_need_the_model_permission_the_admin_asks_for(make_user, method, url, body,
                                                            codename):
    make_user("ann")
    bob = make_user("bob")
    workspace = Workspace.objects.create(public_id="ws_sales", name="Sales")
    Membership.objects.create(workspace=workspace, user=bob)
    plain = api_client_for(make_user("plain"))
    staff = make_user("operator", staff=True)
    client = api_client_for(staff)

    assert getattr(plain, method)(url, body, format="json").status_code == 403
    assert getattr(client, method)(url, body, format="json").status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename=codename))
    fresh = type(staff).objects.get(pk=staff.pk)  # permissions are cached on the instance
    allowed = getattr(api_client_for(fresh), method)(url, body, format="json")
    assert allowed.status_code in (200, 201, 204), allowed.content
