"""Lineage: contract -> OpenMetadata entities and column-level lineage edges (source -> Flink job -> Delta -> Feast)."""
