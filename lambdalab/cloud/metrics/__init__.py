"""CloudWatch metrics the local cloud publishes as AWS does: EMF log lines turned into metrics
(`emf`), Lambda's own `AWS/Lambda` metrics (`lambda_metrics`), and metric alarms evaluated on
the cloud's timer (`alarms`). `publish` writes datapoints into moto's CloudWatch; `service`
attaches all of it to a cloud's runtime."""
