"""The JVM tooling both ``sources`` (the Kafka connector jars) and ``flink`` (the runtime) need: the Java runtime and
jars fetched from Maven Central. Base layer: it knows nothing of contracts or jobs."""
