"""The event catalog over REST: event types with their effective priority and channels."""

from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response

from ..catalog import Priority
from ..models import EventType
from ..routing_view import routing_describer
from ..services.catalog import event_type_update
from ..validators import validate_single_line
from .permissions import staff_with
from .serializers import BoundedListField, EventTypeKeyField, StrictFieldsMixin


class EventTypeSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """An event type of the catalog, with the channels it reaches and where they come from
    (as the routing app describes them, ``events.routing_view``).

    A PATCH sets ``enabled``, ``priority_override``, grouping (``group_by``,
    ``repeat_interval_minutes``) and ``resolves``; the rest is read-only here.
    """

    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    effective_priority = serializers.CharField(read_only=True)
    priority_override = serializers.ChoiceField(
        choices=[("", "No override"), *Priority.CHOICES], required=False, allow_blank=True
    )
    group_by = BoundedListField(
        child=serializers.CharField(max_length=100, validators=[validate_single_line]),
        required=False, max_length=10, distinct=True,
        help_text="Payload keys whose equal values make a repeat; empty: no grouping.")
    resolves = BoundedListField(
        child=EventTypeKeyField(max_length=120), required=False, max_length=20, distinct=True,
        help_text="Event type keys an event of this type resolves (unresolved events of "
                  "those types in its workspace with equal group_by values).")
    effective_channels = serializers.SerializerMethodField()
    channels_source = serializers.SerializerMethodField()

    class Meta:
        model = EventType
        fields = [
            "key", "category", "name", "label", "description", "title_template",
            "default_priority", "priority_override", "effective_priority", "enabled",
            "group_by", "repeat_interval_minutes", "resolves", "effective_channels",
            "channels_source",
        ]
        read_only_fields = [
            "key", "name", "label", "description", "title_template", "default_priority",
        ]

    def _routing(self, event_type):
        return self.context["describe"](event_type)

    def get_effective_channels(self, event_type) -> list[str]:
        routing = self._routing(event_type)
        return routing.channels if routing else []

    def get_channels_source(self, event_type) -> str:
        routing = self._routing(event_type)
        return routing.source if routing else ""


class EventTypeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The event catalog with effective priority and channels. Staff may PATCH."""

    serializer_class = EventTypeSerializer
    permission_classes = [staff_with(write=("events.change_eventtype",), public_read=True)]
    lookup_field = "key"
    lookup_value_regex = r"[^/]+"
    pagination_class = None

    def get_queryset(self):
        event_types = EventType.objects.select_related("category")
        category = self.request.query_params.get("category")
        if category:
            event_types = event_types.filter(category__slug=category)
        return event_types

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "describe": routing_describer()}

    def partial_update(self, request, key=None):
        """Set ``enabled``, ``priority_override``, grouping or ``resolves``; any other field
        is refused."""
        event_type = self.get_object()
        update = self.get_serializer(event_type, data=request.data, partial=True)
        update.is_valid(raise_exception=True)
        event_type_update(event_type=event_type, **update.validated_data)
        return Response(self.get_serializer(event_type).data)
