# Tests of the decision; `paved policy test` (and `make test`) runs every test_ rule.
package paved.authz_test

import rego.v1

import data.paved.authz

alice := {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}

dana := {"ref": "user:default/dana", "groups": ["group:default/churn"], "roles": ["data_scientist"]}

audrey := {"ref": "user:default/audrey", "groups": [], "roles": ["auditor"]}

root := {"ref": "user:default/root", "groups": [], "roles": ["admin"]}

nobody := {"ref": "user:default/nobody", "groups": [], "roles": []}

churn := {"ref": "model:default/churn", "kind": "Model", "owner": "group:default/fraud"}

test_a_role_allows_its_actions_and_says_which_role if {
	d := authz.decision with input as {"action": "registry.model.register", "user": alice, "resource": churn}
	d.allow
	d.reasons == ["your role ml_engineer allows registry.model.register"]
}

test_an_action_no_role_grants_is_denied_naming_the_roles if {
	d := authz.decision with input as {"action": "registry.model.register", "user": dana, "resource": null}
	not d.allow
	d.reasons == ["none of your roles (data_scientist) allows registry.model.register"]
}

test_reading_needs_no_ownership if {
	d := authz.decision with input as {"action": "registry.model.read", "user": dana, "resource": churn}
	d.allow
}

test_changing_what_another_team_owns_is_denied if {
	other := object.union(alice, {"groups": ["group:default/churn"]})
	d := authz.decision with input as {"action": "registry.model.register", "user": other, "resource": churn}
	not d.allow
	d.reasons == ["model:default/churn belongs to group:default/fraud and you are not a member, so you cannot register it"]
}

test_admins_act_on_anything if {
	d := authz.decision with input as {"action": "serving.deployment.delete", "user": root, "resource": churn}
	d.allow
}

test_auditors_read_the_audit_log_and_nothing_of_the_catalog if {
	authz.decision.allow with input as {"action": "audit.log.read", "user": audrey, "resource": null}
	not authz.decision.allow with input as {"action": "catalog.entity.read", "user": audrey, "resource": null}
}

test_data_scientists_do_not_read_the_audit_log if {
	not authz.decision.allow with input as {"action": "audit.log.read", "user": dana, "resource": null}
}

test_someone_without_a_role_is_told_to_ask_for_one if {
	d := authz.decision with input as {"action": "portal.home.read", "user": nobody, "resource": null}
	not d.allow
	d.reasons == ["you have no role in Paved, so you cannot portal.home.read; ask a platform admin for one"]
}

test_a_resource_without_an_owner_is_not_another_teams if {
	unowned := {"ref": "scaffolder-task:7", "kind": "ScaffolderTask", "owner": null}
	authz.decision.allow with input as {"action": "scaffolder.task.cancel", "user": alice, "resource": unowned}
}
