"""The policy actions of SOC 2 evidence."""

from portal import Action

EVIDENCE_READ = Action(
    "soc2.evidence.read", "See the controls, their evidence and status, and download packs"
)
EVIDENCE_EXPORT = Action("soc2.evidence.export", "Export a signed evidence pack for a period")
REVIEW_READ = Action("soc2.review.read", "See a team's quarterly access reviews")
REVIEW_SUBMIT = Action(
    "soc2.review.submit", "Attest, as the team's lead, each member's access for the quarter"
)

SOC2_ACTIONS = [EVIDENCE_READ, EVIDENCE_EXPORT, REVIEW_READ, REVIEW_SUBMIT]
