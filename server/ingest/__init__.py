"""Ingest: open pushed envelopes, validate them, and store each event exactly once."""
