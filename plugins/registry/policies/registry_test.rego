package paved.authz_test

import rego.v1

import data.paved.authz

lead := {"ref": "user:default/carol", "groups": ["group:default/fraud"], "roles": ["team_lead"]}

version := {
	"ref": "model:default/churn", "kind": "Model", "owner": "group:default/fraud",
	"registered_model": "churn", "version": "3", "requested_by": "user:default/alice",
	"approved": false,
}

test_a_team_lead_of_the_owning_team_approves_someone_elses_version if {
	authz.decision.allow with input as {"action": "registry.model.approve", "user": lead, "resource": version, "context": {}}
}

test_no_one_approves_their_own_version if {
	alice := object.union(lead, {"ref": "user:default/alice"})
	decision := authz.decision with input as {"action": "registry.model.approve", "user": alice, "resource": version, "context": {}}
	not decision.allow
	"you registered version 3 of churn, so another team lead must approve it" in decision.reasons
}

test_an_admin_outside_the_team_cannot_approve if {
	admin := {"ref": "user:default/root", "groups": [], "roles": ["admin"]}
	decision := authz.decision with input as {"action": "registry.model.approve", "user": admin, "resource": version, "context": {}}
	not decision.allow
	"only a team lead of group:default/fraud may approve versions of churn" in decision.reasons
}

test_champion_needs_an_approved_version if {
	asked := object.union(version, {"alias": "champion"})
	decision := authz.decision with input as {"action": "registry.model.promote", "user": lead, "resource": asked, "context": {}}
	not decision.allow
	approved := object.union(asked, {"approved": true})
	authz.decision.allow with input as {"action": "registry.model.promote", "user": lead, "resource": approved, "context": {}}
}

test_challenger_needs_no_approval if {
	asked := object.union(version, {"alias": "challenger"})
	authz.decision.allow with input as {"action": "registry.model.promote", "user": lead, "resource": asked, "context": {}}
}
