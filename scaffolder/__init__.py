"""The scaffolder: templates that bootstrap a project in one click, run as persisted tasks."""
