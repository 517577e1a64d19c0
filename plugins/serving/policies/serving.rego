# Serving's rules, added to the decision every action waits for.
#
# input.resource of serving.deployment.create: {"ref": "deployment:churn-production",
#   "kind": "Deployment", "owner": "group:default/fraud", "environment": "production",
#   "model": "churn", "version": "4", "approved": true,
#   "datasets": [{"ref": "dataset:default/churn-sample", "classification": "public",
#                 "classification_approved": false}],
#   "monitoring": {"enabled": true, "configured": true, "maxErrorRate": 0.02, ...}}
# A plugin that scans data for PII adds input.context.pii_scans: {"<dataset ref>": "clean"}.
package paved.authz

import rego.v1

production := "production"

deploys_to_production if {
	input.action == "serving.deployment.create"
	input.resource.environment == production
}

# Production serves approved versions only.
denials contains sprintf("version %s of %s is not approved: a team lead of %s must approve it before it goes to production", [input.resource.version, input.resource.model, input.resource.owner]) if {
	deploys_to_production
	not input.resource.approved
}

# Its training data was scanned for PII, or its classification approved.
denials contains sprintf("training dataset %s has neither a clean PII scan nor an approved classification (annotation paved.dev/classification-approved-by)", [dataset.ref]) if {
	deploys_to_production
	some dataset in input.resource.datasets
	not data_cleared(dataset)
}

denials contains sprintf("%s names no training dataset (spec.trainedOn), so its data cannot be checked for PII", [input.resource.model]) if {
	deploys_to_production
	count(object.get(input.resource, "datasets", [])) == 0
}

data_cleared(dataset) if input.context.pii_scans[dataset.ref] == "clean"

data_cleared(dataset) if dataset.classification_approved

# It is watched: error rate or latency thresholds to raise alerts on.
denials contains "monitoring is not configured: paved-project.yaml needs a monitoring section with enabled: true and maxErrorRate or maxP99Ms" if {
	deploys_to_production
	not input.resource.monitoring.configured
}
