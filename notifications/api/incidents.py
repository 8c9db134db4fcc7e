"""REST for incidents: resolving an event by hand, and staff's inhibit rules. Acknowledging
is an action of one's notification (``NotificationViewSet.acknowledge``)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.backends import registered_backends
from core.errors import Conflict
from core.openapi import refuses
from events.api.permissions import StaffModelPermissions
from events.api.serializers import (
    BoundedListField,
    CategorySlugField,
    EventTypeKeyField,
    StrictFieldsMixin,
    refuse_fields,
)
from events.models import Event
from events.validators import validate_single_line

from ..models import InhibitRule
from ..models.routing import ESCALATION_MAX_MINUTES
from ..services import incidents


class ExternalChannelField(serializers.CharField):
    """A channel that sends outside the app (email, webhook, a plug-in's); the schema lists
    the installed ones."""

    @property
    def openapi(self) -> dict:
        return {"enum": [b.name for b in registered_backends() if b.external]}


class PayloadKeyField(serializers.CharField):
    """A payload key: one line of 1 to 100 characters."""

    def __init__(self, **kwargs):
        super().__init__(max_length=100, validators=[validate_single_line], **kwargs)


class EscalationSerializer(StrictFieldsMixin, serializers.Serializer):
    """A routing rule's ``escalate``: where a critical or high event nobody acknowledged in
    ``after_minutes`` goes out again."""

    after_minutes = serializers.IntegerField(min_value=1, max_value=ESCALATION_MAX_MINUTES)
    channels = BoundedListField(child=ExternalChannelField(), min_length=1, max_length=10,
                                distinct=True,
                                help_text='External channels, e.g. ["email", "webhook"].')
    emails = BoundedListField(child=serializers.EmailField(), required=False, max_length=100,
                              help_text="Addresses that also get the escalation.")


class EventStateSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.SerializerMethodField(
        help_text="A username, or the address whose email link was used; null until then.")
    escalated_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True,
                                        allow_null=True, help_text="Resolved by hand: who.")
    resolved_by_event = serializers.UUIDField(allow_null=True)
    resolved_now = serializers.BooleanField(help_text="false: it was resolved already.")

    def get_acknowledged_by(self, event) -> str | None:
        return event.acknowledged_by_name or None


class EventResolveView(APIView):
    """Resolve an event by hand (staff, or a person it was for): its pending escalations are
    cancelled, every recipient sees it resolved, and the receivers that got it are told (a
    PagerDuty resolve, a Slack "Resolved:", an email follow-up where the rule asks)."""

    @extend_schema(request=None, responses=EventStateSerializer)
    def post(self, request, event_id):
        refuse_fields(request.data)
        event = get_object_or_404(Event, pk=event_id)
        resolved = incidents.event_resolve_by_hand(event=event, user=request.user)
        event.refresh_from_db()
        event.resolved_now = bool(resolved)
        return Response(EventStateSerializer(event).data)


class InhibitRuleSerializer(StrictFieldsMixin, serializers.Serializer):
    """While an unresolved ``source_event_type`` event exists in a workspace, target events
    there whose ``equal`` payload values are the source's are kept as ``inhibited``."""

    id = serializers.IntegerField(read_only=True)
    openapi = {"anyOf": [
        {"required": [name], "properties": {name: {"minItems": 1}}}
        for name in ("target_event_types", "target_categories")]}

    source_event_type = EventTypeKeyField(source="source_event_type.key", max_length=120)
    target_event_types = BoundedListField(child=EventTypeKeyField(max_length=120),
                                          required=False, max_length=20, distinct=True)
    target_categories = BoundedListField(child=CategorySlugField(max_length=50),
                                         required=False, max_length=20, distinct=True)
    equal = BoundedListField(child=PayloadKeyField(), required=False, max_length=10,
                             distinct=True,
                             help_text="Payload keys whose values must match.")
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True,
                                       allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)

    def service_values(self) -> dict:
        values = dict(self.validated_data)
        if "source_event_type" in values:
            values["source_event_type"] = values["source_event_type"]["key"]
        return values


class InhibitRuleViewSet(viewsets.ModelViewSet):
    """Inhibit rules (staff with their model permissions): the noise an outage causes, kept
    from every channel while the outage's event is unresolved."""

    serializer_class = InhibitRuleSerializer
    permission_classes = [StaffModelPermissions]
    queryset = InhibitRule.objects.select_related("source_event_type", "created_by")
    lookup_value_regex = r"\d+"

    def perform_create(self, serializer):
        serializer.instance = incidents.inhibit_rule_save(values=serializer.service_values(),
                                                          created_by=self.request.user)

    @refuses(Conflict)
    def update(self, request, *args, **kwargs):
        """A change that would leave the rule without targets is a 409."""
        return super().update(request, *args, **kwargs)

    @refuses(Conflict)
    def partial_update(self, request, *args, **kwargs):
        return super().partial_update(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.instance = incidents.inhibit_rule_save(values=serializer.service_values(),
                                                          rule=serializer.instance)

    def perform_destroy(self, instance):
        incidents.inhibit_rule_delete(rule=instance)
