"""cascade: a DuckLake lakehouse for CGM data."""
