"""Data sets: the deterministic sample shop and adapters for public data."""
