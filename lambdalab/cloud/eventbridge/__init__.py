"""EventBridge for the local cloud: the pattern language, target input, delivery and schedules."""
