# The scaffolder's rules, part of the decision in authz.rego.
package paved.authz

import rego.v1

# A project is created for a group you belong to (or for yourself), not for another team.
denials contains sprintf("you may only create projects owned by you or a group you belong to, and you are not a member of %s", [owner]) if {
	input.action == "scaffolder.template.run"
	not is_admin
	owner := input.resource.target_owner
	is_string(owner)
	startswith(owner, "group:")
	not owner in input.user.groups
}

denials contains sprintf("you may only create projects owned by you or a group you belong to, not by %s", [owner]) if {
	input.action == "scaffolder.template.run"
	not is_admin
	owner := input.resource.target_owner
	is_string(owner)
	not startswith(owner, "group:")
	owner != input.user.ref
}

# A run is stopped or retried by the person who started it (or an admin).
denials contains sprintf("%s was started by %s, so only they can %s it", [input.resource.ref, input.resource.created_by, verb]) if {
	input.action in {"scaffolder.task.cancel", "scaffolder.task.retry"}
	not is_admin
	is_string(input.resource.created_by)
	input.resource.created_by != input.user.ref
}
