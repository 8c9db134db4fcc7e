"""Critical events reach everyone: users' standing choices do not hold or drop them.

Placed before the user-scope policies; an admin's settings (a disabled event type, a
silence, grouping) still apply to critical events.
"""

from events.catalog import Priority

from .base import Policy


class CriticalAlways(Policy):
    name = "critical_always"

    def apply(self, plan) -> None:
        for event_plan in plan.live():
            if event_plan.event.priority == Priority.CRITICAL:
                event_plan.protected_by = self.name
