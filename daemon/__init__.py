"""The daemon: chord capture, clock, engine and scheduler, and the riffd command line."""
