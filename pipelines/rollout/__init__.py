"""Rollout: the canary of a new contract major (state, sticky buckets, gates, controller, audit log)."""
