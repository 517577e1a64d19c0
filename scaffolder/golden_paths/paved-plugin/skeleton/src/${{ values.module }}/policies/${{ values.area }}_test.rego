package paved.${{ values.area }}_test

import rego.v1

import data.paved.authz

engineer := {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}

scientist := {"ref": "user:default/sam", "groups": ["group:default/fraud"], "roles": ["data_scientist"]}

loner := {"ref": "user:default/lee", "groups": [], "roles": ["ml_engineer"]}

auditor := {"ref": "user:default/ann", "groups": [], "roles": ["auditor"]}

test_engineers_and_scientists_see_the_page if {
	authz.decision.allow with input as {"action": "${{ values.area }}.page.read", "user": engineer, "resource": null}
	authz.decision.allow with input as {"action": "${{ values.area }}.page.read", "user": scientist, "resource": null}
}

test_an_auditor_does_not_see_the_page if {
	not authz.decision.allow with input as {"action": "${{ values.area }}.page.read", "user": auditor, "resource": null}
}

test_an_engineer_in_a_team_asks_for_a_review if {
	authz.decision.allow with input as {"action": "${{ values.area }}.review.request", "user": engineer, "resource": null}
}

test_a_scientist_may_not_ask_for_a_review if {
	d := authz.decision with input as {"action": "${{ values.area }}.review.request", "user": scientist, "resource": null}
	not d.allow
}

test_someone_in_no_team_is_told_why if {
	d := authz.decision with input as {"action": "${{ values.area }}.review.request", "user": loner, "resource": null}
	not d.allow
	startswith(d.reasons[0], "you are in no team yet")
}
