"""The policy actions of serving."""

from portal import Action

DEPLOYMENT_READ = Action(
    "serving.deployment.read", "See deployments, their traffic, metrics, drift and history"
)
DEPLOYMENT_CREATE = Action(
    "serving.deployment.create", "Deploy a model version to an environment, or as a canary"
)
DEPLOYMENT_UPDATE = Action(
    "serving.deployment.update", "Change a canary's share of traffic or promote it"
)
DEPLOYMENT_ROLLBACK = Action(
    "serving.deployment.rollback", "Send a deployment's traffic back to its previous version"
)
DEPLOYMENT_DELETE = Action("serving.deployment.delete", "Stop serving a deployment")
# Asking a model for predictions changes nothing, so it is a read: not audited per request.
PREDICTION_READ = Action("serving.prediction.read", "Ask a deployed model for predictions")

SERVING_ACTIONS = [
    DEPLOYMENT_READ,
    DEPLOYMENT_CREATE,
    DEPLOYMENT_UPDATE,
    DEPLOYMENT_ROLLBACK,
    DEPLOYMENT_DELETE,
    PREDICTION_READ,
]
