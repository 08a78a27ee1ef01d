"""`riffd eval`: melodies measured against real ones (features, the two-sample judge, real
folders of arrangements, the report). Offline: the live runtime never imports it."""
