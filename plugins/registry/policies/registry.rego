# The model registry's rules, added to the decision every action waits for.
#
# input.resource of a registry action: {"ref": "model:default/churn", "kind": "Model",
#   "owner": "group:default/fraud", "registered_model": "churn", "version": "3",
#   "requested_by": "user:default/alice", "approved": false, "alias": "champion"}
package paved.authz

import rego.v1

production_alias := "champion"

# Separation of duties: the person who registered a version cannot approve it, even an admin.
denials contains sprintf("you registered version %s of %s, so another team lead must approve it", [input.resource.version, input.resource.registered_model]) if {
	input.action == "registry.model.approve"
	input.resource.requested_by == input.user.ref
}

# Approvals come from a team lead of the team that owns the model.
denials contains sprintf("only a team lead of %s may approve versions of %s", [input.resource.owner, input.resource.registered_model]) if {
	input.action == "registry.model.approve"
	not is_owning_team_lead
}

is_owning_team_lead if {
	"team_lead" in input.user.roles
	input.resource.owner in input.user.groups
}

# Production (the champion alias) takes an approved version.
denials contains sprintf("version %s of %s is not approved for production; a team lead of %s must approve it first", [input.resource.version, input.resource.registered_model, input.resource.owner]) if {
	input.action == "registry.model.promote"
	input.resource.alias == production_alias
	not input.resource.approved
}
