package paved.cost_test

import rego.v1

import data.paved.authz

engineer := {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}

project := {"ref": "component:default/churn", "kind": "Component", "owner": "group:default/fraud", "labels": {}}

budget := {"team": "group:default/fraud", "month": "2026-11", "amount": 1000, "spent": 999.99, "currency": "USD", "override": null}

train(context) := decision if {
	decision := authz.decision with input as {"action": "training.job.submit", "user": engineer, "resource": project, "context": context}
}

test_a_team_under_its_budget_trains if {
	train({"budget": budget}).allow
}

test_a_team_without_a_budget_trains if {
	train({}).allow
}

test_a_team_at_its_budget_is_denied_with_the_figures if {
	decision := train({"budget": object.union(budget, {"spent": 1000})})
	not decision.allow
	"group:default/fraud has spent 1000 USD of its 1000 USD budget for 2026-11: new training jobs wait for next month, unless a team lead of the team overrides the budget on its Cost tab" in decision.reasons
}

test_an_override_lets_the_team_train_past_its_budget if {
	override := {"by": "user:default/carol", "reason": "quarter-end retraining"}
	train({"budget": object.union(budget, {"spent": 1500, "override": override})}).allow
}

test_the_budget_does_not_stop_other_actions if {
	over := {"budget": object.union(budget, {"spent": 5000})}
	decision := authz.decision with input as {"action": "training.job.read", "user": engineer, "resource": project, "context": over}
	decision.allow
}

override(user) := decision if {
	team := {"ref": "group:default/fraud", "kind": "Group", "owner": "group:default/fraud", "labels": {}}
	decision := authz.decision with input as {"action": "cost.budget.override", "user": user, "resource": team, "context": {}}
}

test_a_team_lead_of_the_team_overrides_its_budget if {
	override({"ref": "user:default/carol", "groups": ["group:default/fraud"], "roles": ["team_lead"]}).allow
}

test_an_admin_or_another_teams_lead_may_not_override if {
	admin := override({"ref": "user:default/root", "groups": ["group:default/platform"], "roles": ["admin"]})
	not admin.allow
	"only a team lead of group:default/fraud may override its budget" in admin.reasons
	not override({"ref": "user:default/dave", "groups": ["group:default/search-ranking"], "roles": ["team_lead"]}).allow
}

test_a_zero_budget_stops_training if {
	not train({"budget": object.union(budget, {"amount": 0, "spent": 0})}).allow
}
