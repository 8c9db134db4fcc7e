"""Routing: from an event to the rows that notify people, one batch at a time.

``rules`` (which channels; the cached configuration) -> ``audience`` (who) -> ``plan``
(each channel's targets) -> the delivery policies (``notifications.policies``) ->
``record`` (rows). ``route`` drives it for one event or a batch; ``files`` is the YAML
routing file.
"""
