"""Every event shape a Lambda trigger delivers, built as AWS builds it (one module per source)."""
