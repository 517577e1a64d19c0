# SOC 2's rule, added to the decision every action waits for: a quarterly access review
# is a team lead's attestation for their own team. An admin who leads no team, or the lead
# of another team, may not give it.
package paved.authz

import rego.v1

denials contains sprintf("only a team lead of %s may review its members' access", [input.resource.owner]) if {
	input.action == "soc2.review.submit"
	not leads_the_reviewed_team
}

leads_the_reviewed_team if {
	"team_lead" in input.user.roles
	input.resource.owner in input.user.groups
}
