"""Server-side key material (the primitives and envelope formats live in ``sync.crypto``)."""
