# The decision every action in Paved waits for: data.paved.authz.decision.
#
# input: {"action": "<area>.<object>.<verb>",
#         "user": {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": [...]},
#         "resource": {"ref": ..., "kind": ..., "owner": "group:default/fraud", ...} or null,
#         "context": {...facts plugins add...}}
#
# An action is allowed when a role grants it and no rule denies it. Every answer carries
# reasons written for the person who asked.
package paved.authz

import rego.v1

default decision := {"allow": false, "reasons": ["no rule allows this action"]}

decision := {"allow": true, "reasons": sort(grants)} if {
	count(denials) == 0
	count(grants) > 0
}

decision := {"allow": false, "reasons": sort(denials)} if {
	count(denials) > 0
}

decision := {"allow": false, "reasons": [not_granted]} if {
	count(denials) == 0
	count(grants) == 0
}

# -- What roles grant (data.paved.roles, see data.json) ---------------------------------

# Exact names are a set lookup; only patterns with a * are matched as globs (the costly part).
grants contains sprintf("your role %s allows %s", [role, input.action]) if {
	some role in input.user.roles
	input.action in data.paved.roles[role].actions
}

grants contains sprintf("your role %s allows %s", [role, input.action]) if {
	some role in input.user.roles
	some pattern in data.paved.roles[role].actions
	contains(pattern, "*")
	glob.match(pattern, ["."], input.action)
}

not_granted := sprintf("none of your roles (%s) allows %s", [roles_text, input.action]) if {
	count(input.user.roles) > 0
}

not_granted := sprintf("you have no role in Paved, so you cannot %s; ask a platform admin for one", [input.action]) if {
	count(input.user.roles) == 0
}

roles_text := concat(", ", sort(input.user.roles))

# -- Ownership: teams change what they own ----------------------------------------------

read_verbs := {"read"}

verb := split(input.action, ".")[2]

is_admin if "admin" in input.user.roles

denials contains sprintf("%s belongs to %s and you are not a member, so you cannot %s it", [input.resource.ref, input.resource.owner, verb]) if {
	not verb in read_verbs
	not is_admin
	is_string(input.resource.owner)
	not input.resource.owner in input.user.groups
}
