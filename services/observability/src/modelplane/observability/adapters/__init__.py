"""Clients of other services and engines (the registry, MLflow)."""
