"""The scaffolder's policy actions."""

from __future__ import annotations

from portal import Action

TEMPLATE_READ = Action(
    "scaffolder.template.read", "See software templates and the forms they ask to fill"
)
TEMPLATE_RUN = Action("scaffolder.template.run", "Create a project from a software template")
TASK_READ = Action("scaffolder.task.read", "See scaffolder runs, their steps and their logs")
TASK_CANCEL = Action("scaffolder.task.cancel", "Stop a scaffolder run")
TASK_RETRY = Action(
    "scaffolder.task.retry", "Run a failed scaffolder run again from its failed step"
)
ACTION_READ = Action("scaffolder.action.read", "See the actions templates can use")
REPOSITORY_CREATE = Action(
    "scaffolder.repository.create", "Publish a new git repository from a template's files"
)

SCAFFOLDER_ACTIONS = [
    TEMPLATE_READ,
    TEMPLATE_RUN,
    TASK_READ,
    TASK_CANCEL,
    TASK_RETRY,
    ACTION_READ,
    REPOSITORY_CREATE,
]
