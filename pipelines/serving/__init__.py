"""Serving: the Feast-compatible HTTP API over the online store, with TTL, fallbacks and canary routing."""
