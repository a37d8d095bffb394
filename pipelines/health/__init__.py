"""Health: the signals of a contract version (freshness, null rate, dead letters, online coverage), their verdicts."""
