"""The policy actions of the model registry."""

from portal import Action

MODEL_READ = Action("registry.model.read", "See registered models, their versions and lineage")
MODEL_REGISTER = Action("registry.model.register", "Register a new version of a model from a run")
MODEL_PROMOTE = Action(
    "registry.model.promote", "Point an alias (champion, challenger) at a version"
)
MODEL_APPROVE = Action("registry.model.approve", "Approve or reject a version for production")

REGISTRY_ACTIONS = [MODEL_READ, MODEL_REGISTER, MODEL_PROMOTE, MODEL_APPROVE]
