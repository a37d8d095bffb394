"""Code generation: pure functions from a contract to what runs (Flink SQL, Feast objects), tested with golden files."""
