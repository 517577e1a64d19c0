"""The model registry on MLflow: versions with their lineage, aliases, and approvals that a
team lead of the owning team gives before a version goes to production."""
