"""The validator's ports implemented over the platform's contracts and MLflow."""
