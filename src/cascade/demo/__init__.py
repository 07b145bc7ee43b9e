"""A Nightscout-compatible demo server and the deterministic CGM data it serves."""
