"""An admin's silence catches matching events while it is active: they are kept with status
``silenced`` (and the silence's id) and delivered on no channel, whatever their priority."""

from django.utils import timezone

from events.models import Event

from ..models import Silence
from ..routing.plan import Decision, Verdict
from .base import Policy


class Silences(Policy):
    name = "silences"

    def apply(self, plan) -> None:
        """No query while the silences are unchanged: those not ended yet are read once per
        routing version (any write to silences changes it) and each route keeps the ones
        active at its time."""
        live = list(plan.live())
        if not live:
            return
        now = timezone.now()
        active = [s for s in plan.config.remembered(self.name, _not_ended)
                  if s.starts_at <= now < s.ends_at]
        for event_plan in live:
            silence = next((s for s in active if s.matches(event_plan.event)), None)
            if silence is not None:
                plan.stop_event(event_plan, Verdict(
                    decision=Decision.SILENCED, policy=self.name, by_id=str(silence.pk),
                    detail=f"Silence {silence.pk} (until {silence.ends_at:%Y-%m-%d %H:%M} "
                           f"UTC): {silence.comment[:200]}"),
                    status=Event.Status.SILENCED)


def _not_ended() -> list[Silence]:
    return list(Silence.objects.filter(ends_at__gt=timezone.now()).order_by("starts_at", "pk"))
