"""PII scanning: Dataset files and uploaded samples scanned with Presidio, masked findings
per column on the Dataset page, and each dataset's latest result a fact of the production
deploy rule (``input.context.pii_scans``)."""
