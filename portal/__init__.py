"""Paved's core, and the facade plugin authors import from.

from portal import hookimpl, requires, Action, NavItem, PavedError
"""

from portal.actions import Action
from portal.auth.identity import Identity
from portal.errors import (
    Conflict,
    Denied,
    EngineUnavailable,
    FieldProblem,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PavedError,
)
from portal.gate import Resource, facts_for, requires
from portal.health import ReadinessCheck
from portal.hookspecs import hookimpl
from portal.routing import hot_path
from portal.settings import Settings
from portal.shell import EntityTab, NavItem
from portal.tasks import TaskCancelled, TaskFailed, TaskHandler
from portal.worker import TaskContext

__all__ = [
    "Action",
    "Conflict",
    "Denied",
    "EngineUnavailable",
    "EntityTab",
    "FieldProblem",
    "Identity",
    "InvalidInput",
    "NavItem",
    "NotAuthenticated",
    "NotFound",
    "PavedError",
    "ReadinessCheck",
    "Resource",
    "Settings",
    "TaskCancelled",
    "TaskContext",
    "TaskFailed",
    "TaskHandler",
    "facts_for",
    "hookimpl",
    "hot_path",
    "requires",
]
