"""SOC 2 evidence: the controls map, quarterly access reviews, and signed evidence packs
an auditor verifies offline."""
