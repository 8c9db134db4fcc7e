"""What channels_app writes or sends, one module per concept:

- ``email``: the email channel's settings (change, test);
- ``webhooks``: webhook endpoints (save, delete, test, delivery health);
- ``digests``: the per-channel digest switches;
- ``secrets``: re-encryption of stored secrets with a new key.
"""
