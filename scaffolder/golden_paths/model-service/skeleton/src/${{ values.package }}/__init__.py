"""${{ values.name }}: a FastAPI service that serves an MLflow model over HTTP."""
