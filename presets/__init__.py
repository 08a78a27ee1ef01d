"""Presets: the TOML files beside this module, and their schema and loader (schema.py)."""
from .schema import SPEC, Preset, PresetError, bundled_names, is_meter, load_preset, markdown_table, to_toml

__all__ = ["SPEC", "Preset", "PresetError", "bundled_names", "is_meter", "load_preset", "markdown_table", "to_toml"]
