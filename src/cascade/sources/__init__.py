"""Data sources: Nightscout over HTTP and exported files."""
