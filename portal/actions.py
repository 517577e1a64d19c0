"""The policy vocabulary: actions, and the ones the core itself declares."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Action:
    """One thing a person can do, named ``<area>.<object>.<verb>``; policies decide on it."""

    name: str
    description: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"action {self.name!r} is not named <area>.<object>.<verb> "
                "(lowercase letters, digits and underscores)"
            )

    def __str__(self) -> str:
        return self.name

    @property
    def is_read(self) -> bool:
        """A ``.read`` action changes nothing, whatever the method that asks for it (a query
        sent as a POST body): it is not audited."""
        return self.name.endswith(".read")


HOME_READ = Action("portal.home.read", "See the portal's home page")
TASK_READ = Action("portal.task.read", "See tasks, their progress and their logs")
TASK_CANCEL = Action("portal.task.cancel", "Ask a queued or running task to stop")
PLUGINS_READ = Action("admin.plugins.read", "See the installed plugins and their health")

API_DOCS_READ = Action("portal.api_docs.read", "Read the REST API's OpenAPI document")
AUDIT_READ = Action("audit.log.read", "Read and export the audit log")

IDENTITY_READ = Action("auth.identity.read", "See who you are signed in as, with your roles")
TOKEN_READ = Action("auth.token.read", "See your API tokens")
TOKEN_CREATE = Action("auth.token.create", "Create an API token")
TOKEN_REVOKE = Action("auth.token.revoke", "Revoke an API token")
# Signing in and out are not decided (nobody is known yet, or is leaving), only recorded.
SESSION_CREATE = Action("auth.session.create", "Sign in")
SESSION_DELETE = Action("auth.session.delete", "Sign out")

CORE_ACTIONS = [
    HOME_READ,
    TASK_READ,
    TASK_CANCEL,
    PLUGINS_READ,
    API_DOCS_READ,
    AUDIT_READ,
    IDENTITY_READ,
    TOKEN_READ,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    SESSION_CREATE,
    SESSION_DELETE,
]
