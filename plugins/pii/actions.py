"""The policy actions of PII scanning."""

from portal import Action

SCAN_RUN = Action("pii.scan.run", "Scan a dataset, or a sample of one, for personal data")
SCAN_READ = Action("pii.scan.read", "See PII scans and their masked findings")

PII_ACTIONS = [SCAN_RUN, SCAN_READ]
