"""Fixtures of the SOC 2 tests: a team with members in the catalog, and a worker that
writes evidence packs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from plugins.soc2 import service
from plugins.soc2.models import EvidenceExport
from portal.audit import append_event
from portal.auth.identity import Identity
from portal.gate import Authority
from portal.settings import Settings
from portal.tasks import TaskHandler
from portal.worker import Worker

from conftest import ALICE, CAROL, FRAUD

AUDITOR = "user:default/erin"
PEOPLE = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: fraud
spec:
  type: team
  children: []
  members: [alice, carol]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alice
spec:
  profile: {displayName: Alice Martin}
  memberOf: [fraud]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: carol
spec:
  profile: {displayName: Carol Diaz}
  memberOf: [fraud]
"""


@pytest.fixture
def people_root(tmp_path: Path) -> Path:
    root = tmp_path / "people"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, people_root: Path) -> Settings:
    roots = [*settings.catalog.file_roots, people_root]
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": roots})}
    )


@pytest.fixture
def team(people_root: Path, engine: Engine, settings: Settings) -> str:
    """The fraud team, with alice and carol as its members, in the catalog."""
    path = people_root / "people.yaml"
    path.write_text(textwrap.dedent(PEOPLE))
    with Session(engine) as session:
        catalog.add_location(session, "file", str(path), by="tests", settings=settings.catalog)
        session.commit()
    return FRAUD


@pytest.fixture
def exporter(app: FastAPI, engine: Engine, settings: Settings) -> Worker:
    """Writes queued evidence packs, as the portal's worker does."""
    return Worker(
        engine,
        [TaskHandler(service.TASK_KIND, service.run_export, title="Evidence export")],
        settings.tasks,
        portal_settings=settings,
        authority=Authority(app.state.policy, app.state.plugins, engine, settings),
    )


@pytest.fixture
def activity(engine: Engine) -> None:
    """Today's audit events: alice signs in and creates an entity; carol is denied."""
    with Session(engine) as session:
        append_event(
            session,
            actor=ALICE,
            action="auth.session.create",
            allowed=True,
            outcome="succeeded",
            detail={"via": "oidc", "roles": ["ml_engineer"], "groups": [FRAUD]},
        )
        append_event(
            session, actor=ALICE, action="catalog.entity.create", allowed=True, outcome="succeeded"
        )
        append_event(
            session,
            actor=CAROL,
            action="serving.deployment.create",
            allowed=False,
            outcome="denied",
            reasons=["production needs an approved version"],
        )
        session.commit()


Export = Callable[[date, date], EvidenceExport]


@pytest.fixture
def export(engine: Engine, settings: Settings, exporter: Worker) -> Export:
    """``export(start, end)``: ask for a pack as the auditor, write it, return the export."""

    def run(start: date, end: date) -> EvidenceExport:
        with Session(engine, expire_on_commit=False) as session:
            asked = service.request_export(
                session, start, end, settings, by=Identity(AUDITOR, roles=("auditor",))
            )
            session.commit()
        assert exporter.run_once()
        with Session(engine, expire_on_commit=False) as session:
            return service.get_export(session, asked.id or 0)

    return run


__all__ = ["ALICE", "AUDITOR", "CAROL", "FRAUD"]
