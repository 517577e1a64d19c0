"""Test data made through the real services and the real plugin manager."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal import tasks
from portal.hookspecs import hookimpl
from portal.models import Task
from portal.plugins import PluginRecord, Plugins


@contextmanager
def throwaway_plugin(
    plugins: Plugins, name: str, **hooks: Callable[..., Any]
) -> Iterator[ModuleType]:
    """Register a plugin made of the given hook functions; unregister it afterwards."""
    module = ModuleType(name)
    for hook_name, function in hooks.items():
        function.__name__ = hook_name
        setattr(module, hook_name, hookimpl(function))
    plugins.register(module, PluginRecord(name=name, target=f"tests:{name}"))
    try:
        yield module
    finally:
        plugins.unregister(name)


def reload_task(engine: Engine, task_id: int) -> Task:
    """The task as the database has it now."""
    with Session(engine) as session:
        return tasks.get_task(session, task_id)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def make_task(session: Session, kind: str = "test.echo", **params: Any) -> Task:
    task = tasks.enqueue(
        session, kind, title=f"{kind} {params}", params=params, created_by="user:default/tester"
    )
    session.commit()
    session.refresh(task)  # loaded, so the task stays readable after the session closes
    return task
