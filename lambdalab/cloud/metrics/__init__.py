"""CloudWatch metrics the local cloud publishes as AWS does: EMF log lines turned into metrics
(`emf`); `publish` writes datapoints into moto's CloudWatch; `service` attaches it to the cloud."""
