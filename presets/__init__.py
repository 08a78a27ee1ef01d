"""Bundled presets (TOML data only); loaded by riffd.daemon.presets."""
