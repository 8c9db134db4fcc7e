"""The admin's digest pages: pending counts, Flush now, deliveries, digest settings."""

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from channels_app.models import DigestSetting
from notifications.models import Delivery, Digest, Notification
from notifications.services.digests import digest_flush
from tests.support import emit_and_route

MEDIUM = "query.long_running_query"
LOW = "policy.policy_created"
INFO = "data_source.schema_change"


@pytest.fixture
def admin_client(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def pending(make_workspace):
    """2 members: 3 medium (5m), 1 low (15m), nothing in 1h; 8 pending in-app items."""
    workspace = make_workspace(members=2)
    for n in range(3):
        emit_and_route(MEDIUM, workspace, query_name=f"q{n}")
    emit_and_route(LOW, workspace, policy_name="PII")
    return workspace


def pending_table(response) -> dict[str, dict]:
    return {bucket["value"]: bucket for bucket in response.context["buckets"]}


def test_digest_changelist_shows_pending_counts_per_bucket_and_channel(admin_client, pending):
    response = admin_client.get(reverse("admin:notifications_digest_changelist"))

    assert response.status_code == 200
    table = pending_table(response)
    assert table["5m"]["channels"] == [("In-app", 6), ("Email", 0), ("Webhook", 0)]
    assert table["5m"]["total"] == 6
    assert table["15m"]["total"] == 2
    assert table["1h"]["total"] == 0
    html = response.content.decode()
    assert "Pending digest items" in html
    row = "<td>5 minutes (5m)</td><td>6</td><td>0</td><td>0</td><td><strong>6</strong></td>"
    assert row in re.sub(r">\s+<", "><", html)
    assert html.count('value="Flush now"') == 3


def test_flush_now_queues_the_flush_and_says_so(admin_client, pending,
                                               django_capture_on_commit_callbacks):
    url = reverse("admin:notifications_digest_flush")

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url, {"bucket": "5m"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:notifications_digest_changelist")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Flush of 5m queued: the digests are sent in a moment."
    ]
    assert not Digest.objects.exists()  # not flushed inside the request
    [publish] = callbacks
    assert publish.keywords == {"bucket": "5m"}

    digest_flush(bucket="5m")  # what the queued task does on a worker

    for member in pending.people:
        [digest] = Notification.objects.filter(user=member, kind="digest")
        assert len(digest.items) == 3
    assert Delivery.objects.filter(bucket="15m", status="pending").count() == 2

    page = admin_client.get(reverse("admin:notifications_digest_changelist"))
    table = pending_table(page)
    assert (table["5m"]["total"], table["15m"]["total"]) == (0, 2)
    assert page.context["cl"].result_count == 2  # the two sent digests are listed


def test_flush_now_with_the_broker_down_says_so_and_loses_nothing(live_db, admin_client, pending,
                                                                 monkeypatch):
    def broker_down(name, **options):
        raise OSError("Connection refused")

    monkeypatch.setattr("notifications.services.digests.current_app.send_task", broker_down)
    waiting = Delivery.objects.filter(bucket="5m", status="pending").count()

    response = admin_client.post(reverse("admin:notifications_digest_flush"), {"bucket": "5m"},
                                 follow=True)

    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"]]
    assert "broker does not answer" in message
    assert Delivery.objects.filter(bucket="5m", status="pending").count() == waiting > 0
    assert not Digest.objects.exists()


def test_flush_now_refuses_an_unknown_bucket_and_get(admin_client, pending):
    url = reverse("admin:notifications_digest_flush")

    response = admin_client.post(url, {"bucket": "2m"}, follow=True)

    assert "Unknown bucket &#x27;2m&#x27;; choose from 5m, 15m, 1h" in response.content.decode()
    assert admin_client.get(url).status_code == 405
    assert not Digest.objects.exists()
    assert Delivery.objects.filter(status="pending").count() == 8


def test_flush_now_is_for_staff_only(client, user, pending):
    client.force_login(user)

    response = client.post(reverse("admin:notifications_digest_flush"), {"bucket": "5m"})

    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert not Digest.objects.exists()


def test_flush_now_needs_the_flush_permission_not_just_view(client, make_user, pending):
    from django.contrib.auth.models import Permission

    viewer = make_user("viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_digest"))
    client.force_login(viewer)

    page = client.get(reverse("admin:notifications_digest_changelist"))
    response = client.post(reverse("admin:notifications_digest_flush"), {"bucket": "5m"})

    assert page.status_code == 200 and "Flush now" not in page.content.decode()
    assert response.status_code == 403
    assert not Digest.objects.exists()

    viewer.user_permissions.add(Permission.objects.get(codename="flush_digests"))
    response = client.post(reverse("admin:notifications_digest_flush"), {"bucket": "5m"},
                           follow=True)
    assert "Flush of 5m queued" in response.content.decode()


def test_delivery_changelist_filters_by_status_and_bucket(admin_client, pending):
    digest_flush(bucket="5m")
    url = reverse("admin:notifications_delivery_changelist")

    def listed(**filters):
        response = admin_client.get(url, filters)
        assert response.status_code == 200
        return sorted((d.bucket, d.status) for d in response.context["cl"].result_list)

    assert listed(status__exact="pending") == [("15m", "pending")] * 2
    assert listed(status__exact="delivered") == [("5m", "delivered")] * 6
    assert listed(bucket__exact="15m") == [("15m", "pending")] * 2
    assert listed(status__exact="pending", bucket__exact="5m") == []
    assert len(listed()) == 8


def test_digest_setting_changelist_toggles_digests_with_one_save(admin_client, make_workspace):
    url = reverse("admin:channels_app_digestsetting_changelist")
    formset = admin_client.get(url).context["cl"].formset
    data = {
        "form-TOTAL_FORMS": str(formset.total_form_count()),
        "form-INITIAL_FORMS": str(formset.initial_form_count()),
        "_save": "Save",
    }
    for index, form in enumerate(formset.forms):
        data[f"form-{index}-id"] = str(form.instance.pk)
        if form.instance.channel != "in_app":  # unchecked box: in-app off
            data[f"form-{index}-digest_enabled"] = "on"

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert dict(DigestSetting.objects.values_list("channel", "digest_enabled")) == {
        "in_app": False, "email": True, "webhook": True,
    }
    # What the switch means: a medium event now reaches the bell at once.
    workspace = make_workspace(members=1)
    event = emit_and_route(MEDIUM, workspace, query_name="slow")
    assert Notification.objects.get(user=workspace.people[0]).event_id == event.pk
