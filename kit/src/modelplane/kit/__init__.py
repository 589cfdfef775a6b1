"""modelplane-kit: what every modelplane service does the same way.

Modules are imported on their own (``modelplane.kit.errors`` has no grpc
dependency, so domain code can raise its errors without importing grpc).
"""
