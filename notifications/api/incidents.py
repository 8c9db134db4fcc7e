"""REST for incidents: resolving an event by hand, and staff's inhibit rules. Acknowledging
is an action of one's notification (``NotificationViewSet.acknowledge``)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.permissions import StaffModelPermissions
from events.api.serializers import BoundedListField, StrictFieldsMixin, refuse_fields
from events.models import Event

from ..models import InhibitRule
from ..services import incidents


class EscalationSerializer(StrictFieldsMixin, serializers.Serializer):
    """A routing rule's ``escalate``: where a critical or high event nobody acknowledged in
    ``after_minutes`` goes out again."""

    after_minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60)
    channels = BoundedListField(child=serializers.CharField(max_length=50), max_length=10,
                                help_text='External channels, e.g. ["email", "webhook"].')
    emails = BoundedListField(child=serializers.EmailField(), required=False, max_length=100,
                              help_text="Addresses that also get the escalation.")


class EventStateSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by_name", allow_null=True)
    escalated_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                               allow_null=True)
    resolved_by_event = serializers.UUIDField(allow_null=True)
    resolved_now = serializers.BooleanField(help_text="false: it was resolved already.")


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
    source_event_type = serializers.CharField(source="source_event_type.key", max_length=120,
                                              help_text="An event type key.")
    target_event_types = BoundedListField(child=serializers.CharField(max_length=120),
                                          required=False, max_length=20)
    target_categories = BoundedListField(child=serializers.CharField(max_length=50),
                                         required=False, max_length=20)
    equal = BoundedListField(child=serializers.CharField(max_length=100), required=False,
                             max_length=10, help_text="Payload keys whose values must match.")
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
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

    def perform_update(self, serializer):
        serializer.instance = incidents.inhibit_rule_save(values=serializer.service_values(),
                                                          rule=serializer.instance)

    def perform_destroy(self, instance):
        incidents.inhibit_rule_delete(rule=instance)
