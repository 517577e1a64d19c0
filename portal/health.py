"""Readiness: the checks behind ``/readyz``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from portal import schema
from portal.db import check_reachable


@dataclass(frozen=True)
class ReadinessCheck:
    """A named check: ``check(app)`` returns when ready, raises with a reason when not."""

    name: str
    check: Callable[[FastAPI], None]

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name) or not callable(self.check):
            raise TypeError(
                f"ReadinessCheck({self.name!r}, ...): expected a name and a callable check(app)"
            )


def check_database(app: FastAPI) -> None:
    engine = app.state.engine
    check_reachable(engine)
    current, head = schema.current_revision(engine), schema.head_revision()
    if current != head:
        raise RuntimeError(
            f"database schema is at revision {current or 'none'}, the code expects {head}: "
            "run `paved db upgrade`"
        )


# A decision any working policy can make; readiness only asks that one comes back.
PROBE = {
    "action": "portal.home.read",
    "user": {"ref": "user:default/readiness-probe", "groups": [], "roles": []},
    "resource": None,
    "context": {},
}


def check_policy(app: FastAPI) -> None:
    """The policy engine answers with a well-formed decision (raises EngineUnavailable)."""
    app.state.policy.decide(PROBE)


def run_checks(app: FastAPI, checks: list[ReadinessCheck]) -> dict[str, dict[str, Any]]:
    """Run every check; a check that raises is reported, never propagated."""
    results: dict[str, dict[str, Any]] = {}
    for readiness in checks:
        started = time.perf_counter()
        try:
            readiness.check(app)
        except Exception as exc:
            results[readiness.name] = {"ok": False, "reason": str(exc)}
        else:
            results[readiness.name] = {"ok": True}
        results[readiness.name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return results
