"""Bridges: translate MIDI, OSC and files into riffd events and back. They never decide."""
