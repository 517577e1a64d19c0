package paved.soc2_test

import rego.v1

import data.paved.authz

team := {"ref": "group:default/fraud", "kind": "Group", "owner": "group:default/fraud", "labels": {}}

review(user) := decision if {
	decision := authz.decision with input as {"action": "soc2.review.submit", "user": user, "resource": team, "context": {}}
}

read_reviews(user) := decision if {
	decision := authz.decision with input as {"action": "soc2.review.read", "user": user, "resource": team, "context": {}}
}

test_a_team_lead_of_the_team_reviews_its_access if {
	review({"ref": "user:default/carol", "groups": ["group:default/fraud"], "roles": ["team_lead"]}).allow
}

test_an_admin_another_teams_lead_or_an_engineer_may_not_review if {
	admin := review({"ref": "user:default/root", "groups": ["group:default/platform"], "roles": ["admin"]})
	not admin.allow
	"only a team lead of group:default/fraud may review its members' access" in admin.reasons
	not review({"ref": "user:default/dave", "groups": ["group:default/search-ranking"], "roles": ["team_lead"]}).allow
	not review({"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}).allow
}

test_an_auditor_reads_reviews_and_evidence_but_changes_nothing if {
	auditor := {"ref": "user:default/erin", "groups": [], "roles": ["auditor"]}
	read_reviews(auditor).allow
	not review(auditor).allow
	export := authz.decision with input as {"action": "soc2.evidence.export", "user": auditor, "resource": null, "context": {}}
	export.allow
	scan := authz.decision with input as {"action": "pii.scan.read", "user": auditor, "resource": null, "context": {}}
	not scan.allow
}

test_an_engineer_may_not_export_evidence if {
	engineer := {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}
	export := authz.decision with input as {"action": "soc2.evidence.export", "user": engineer, "resource": null, "context": {}}
	not export.allow
}
