"""Real servers the tests and benchmarks start on 127.0.0.1: a Kafka 4.x broker (KRaft, from Maven Central jars) and a
redis-server (Debian package). Never imported by the product itself (the layers contract forbids it)."""
