"""Serving: registered model versions deployed to environments, behind a router that splits
traffic between a stable and a canary version and rolls a failing canary back."""
