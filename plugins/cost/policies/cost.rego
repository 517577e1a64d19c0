# Cost's rule, added to the decision every action waits for: a team past its monthly
# budget starts no new training jobs, unless a team lead of the team overrode the budget.
#
# input.context.budget of training.job.submit, when the project's team has a budget:
#   {"team": "group:default/fraud", "month": "2026-11", "amount": 1000, "spent": 1040.5,
#    "currency": "USD", "override": null}
# "override" is {"by": "user:default/carol", "reason": "..."} once a team lead overrode it.
package paved.authz

import rego.v1

denials contains sprintf("%s has spent %v %s of its %v %s budget for %s: new training jobs wait for next month, unless a team lead of the team overrides the budget on its Cost tab", [budget.team, budget.spent, budget.currency, budget.amount, budget.currency, budget.month]) if {
	input.action == "training.job.submit"
	budget := input.context.budget
	budget.spent >= budget.amount
	object.get(budget, "override", null) == null
}

# An override is a team lead's call for their own team: an admin who leads no team, or the
# lead of another team, may not make it.
denials contains sprintf("only a team lead of %s may override its budget", [input.resource.owner]) if {
	input.action == "cost.budget.override"
	not leads_the_team
}

leads_the_team if {
	"team_lead" in input.user.roles
	input.resource.owner in input.user.groups
}
