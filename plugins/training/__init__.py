"""Training: a project's own entry point run as a job (locally or as a Kubernetes Job),
its log followed live and its MLflow run linked."""
