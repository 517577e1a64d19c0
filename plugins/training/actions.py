"""The policy actions of training."""

from portal import Action

JOB_SUBMIT = Action("training.job.submit", "Start a training run of a project")
JOB_READ = Action("training.job.read", "See training jobs, their parameters and logs")
JOB_CANCEL = Action("training.job.cancel", "Stop a training job")

TRAINING_ACTIONS = [JOB_SUBMIT, JOB_READ, JOB_CANCEL]
