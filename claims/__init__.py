"""Paper claims as tests: the registry (single source of thresholds), paper tables, claim tests."""
