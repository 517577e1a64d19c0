package paved.scaffolder_test

import rego.v1

import data.paved.authz

alice := {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}

root := {"ref": "user:default/root", "groups": [], "roles": ["admin"]}

template(owner) := {"ref": "template:default/classification", "kind": "Template", "owner": null, "target_owner": owner}

test_a_project_for_your_own_group_is_allowed if {
	authz.decision.allow with input as {"action": "scaffolder.template.run", "user": alice, "resource": template("group:default/fraud")}
}

test_a_project_for_yourself_is_allowed if {
	authz.decision.allow with input as {"action": "scaffolder.template.run", "user": alice, "resource": template("user:default/alice")}
}

test_a_project_for_another_team_is_denied_naming_it if {
	d := authz.decision with input as {"action": "scaffolder.template.run", "user": alice, "resource": template("group:default/churn")}
	not d.allow
	d.reasons == ["you may only create projects owned by you or a group you belong to, and you are not a member of group:default/churn"]
}

test_a_project_for_someone_else_is_denied if {
	d := authz.decision with input as {"action": "scaffolder.template.run", "user": alice, "resource": template("user:default/bob")}
	not d.allow
}

test_a_template_without_an_owner_field_runs if {
	authz.decision.allow with input as {"action": "scaffolder.template.run", "user": alice, "resource": template(null)}
}

test_admins_create_for_any_team if {
	authz.decision.allow with input as {"action": "scaffolder.template.run", "user": root, "resource": template("group:default/churn")}
}

run_by(who) := {"ref": "scaffolder-task:7", "kind": "ScaffolderTask", "owner": null, "created_by": who}

test_you_cancel_and_retry_your_own_runs if {
	authz.decision.allow with input as {"action": "scaffolder.task.cancel", "user": alice, "resource": run_by("user:default/alice")}
	authz.decision.allow with input as {"action": "scaffolder.task.retry", "user": alice, "resource": run_by("user:default/alice")}
}

test_you_do_not_cancel_someone_elses_run if {
	d := authz.decision with input as {"action": "scaffolder.task.cancel", "user": alice, "resource": run_by("user:default/bob")}
	not d.allow
	d.reasons == ["scaffolder-task:7 was started by user:default/bob, so only they can cancel it"]
}
