"""The routing file: the seed's YAML format, imported atomically and exported verbatim.

    routing:
      data_sources:            # category slug
        channels: [in_app]     # optional: the category's rule
        connection_lost:       # event name within the category
          channels: [in_app, email, webhook]
          priority: critical   # sets the event type's priority override
          emails: [oncall@example.com]   # optional distribution lists for email
          escalate: {after_minutes: 15, channels: [email]}  # nobody acknowledged in time
          notify_resolved: true          # emails get a "Resolved:" follow-up
          group_by: [datasource_name]    # repeats with equal values fold into the first
          repeat_interval_minutes: 30    # for this long (default 60)
        connection_established:
          resolves: [data_source.connection_lost]   # by the resolved type's group_by
    inhibit:                   # optional: while a source event is unresolved, targets with
      - source_event_type: data_source.connection_lost   # equal values go nowhere
        target_categories: [queries]
        equal: [datasource_name]

Import applies the whole file or nothing (``importing``). With ``replace``, the file is the
complete configuration. Whatever the input, an import costs bounded time and memory and
answers a short error naming the key path (``reading``, ``parsing``).
"""

from .exporting import routing_export
from .importing import INHIBIT_PERMISSIONS, ImportResult, routing_import
from .parsing import ROUTING_FILE
from .reading import RoutingFileError, routing_file_read

__all__ = ["INHIBIT_PERMISSIONS", "ROUTING_FILE", "ImportResult", "RoutingFileError",
           "routing_export", "routing_file_read", "routing_import"]
