package paved.authz_test

import rego.v1

import data.paved.authz

engineer := {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}

ready := {
	"ref": "deployment:churn-production", "kind": "Deployment", "owner": "group:default/fraud",
	"environment": "production", "model": "churn", "version": "4", "approved": true,
	"datasets": [{"ref": "dataset:default/churn-sample", "classification": "public", "classification_approved": true}],
	"monitoring": {"enabled": true, "configured": true, "maxErrorRate": 0.02},
}

deploy(resource) := decision if {
	decision := authz.decision with input as {"action": "serving.deployment.create", "user": engineer, "resource": resource, "context": {}}
}

test_a_ready_version_goes_to_production if {
	deploy(ready).allow
}

test_production_needs_an_approved_version if {
	decision := deploy(object.union(ready, {"approved": false}))
	not decision.allow
	"version 4 of churn is not approved: a team lead of group:default/fraud must approve it before it goes to production" in decision.reasons
}

test_staging_needs_none_of_it if {
	staging := object.union(ready, {"environment": "staging", "approved": false, "datasets": [], "monitoring": {"configured": false}})
	deploy(staging).allow
}

test_training_data_needs_a_clean_scan_or_an_approved_classification if {
	unapproved := [{"ref": "dataset:default/churn-sample", "classification": "pii", "classification_approved": false}]
	resource := object.union(ready, {"datasets": unapproved})
	decision := deploy(resource)
	not decision.allow
	"training dataset dataset:default/churn-sample has neither a clean PII scan nor an approved classification (annotation paved.dev/classification-approved-by)" in decision.reasons
	scanned := authz.decision with input as {"action": "serving.deployment.create", "user": engineer, "resource": resource, "context": {"pii_scans": {"dataset:default/churn-sample": "clean"}}}
	scanned.allow
}

test_a_model_without_training_data_cannot_go_to_production if {
	decision := deploy(object.union(ready, {"datasets": []}))
	not decision.allow
	"churn names no training dataset (spec.trainedOn), so its data cannot be checked for PII" in decision.reasons
}

test_production_needs_monitoring if {
	decision := deploy(object.union(ready, {"monitoring": {"enabled": true, "configured": false}}))
	not decision.allow
	some reason in decision.reasons
	startswith(reason, "monitoring is not configured")
}

test_every_missing_condition_is_named if {
	bare := object.union(ready, {"approved": false, "datasets": [], "monitoring": {"configured": false}})
	count(deploy(bare).reasons) == 3
}
