"""Music knowledge every room may use: pitch classes and note names, chords and their
naming, scales, metric strength and the velocity rule. Imports no other room."""
