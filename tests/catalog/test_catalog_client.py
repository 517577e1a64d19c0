"""Backstage's own client, @backstage/catalog-client (npm, tests/catalog_client), drives
Paved's catalog API over every method it offers, against the demo catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.settings import Settings

from conftest import TESTS_DIR
from processes import serve_in_thread

CLIENT_DIR = TESTS_DIR / "catalog_client"
COMPONENT = (
    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
    "spec:\n  type: service\n  lifecycle: production\n  owner: fraud\n"
)


def test_backstages_catalog_client_works_against_paved(
    app: FastAPI, engine: Engine, settings: Settings, admin_headers: dict[str, str]
) -> None:
    installed = CLIENT_DIR / "node_modules" / "@backstage" / "catalog-client" / "package.json"
    if not installed.is_file() or shutil.which("node") is None:
        pytest.skip(
            "@backstage/catalog-client is not installed (npm ci --prefix tests/catalog_client)"
        )
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)
        session.commit()
    roots = settings.catalog.file_roots[0]
    made, moved = roots / "made.yaml", roots / "moved.yaml"
    made.write_text(COMPONENT.format(name="client-made"))
    moved.write_text(COMPONENT.format(name="client-moved"))
    with serve_in_thread(app) as base:
        env = {
            **os.environ,
            "PAVED_URL": base,
            "PAVED_TOKEN": admin_headers["Authorization"].removeprefix("Bearer "),
            "FILE_TARGET": str(made),
            "OTHER_TARGET": str(moved),
        }
        run = subprocess.run(
            ["node", "drive.mjs"],
            cwd=CLIENT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    assert "fraud-scorer" in out["getEntities"]
    assert out["getEntities"] == sorted(out["getEntities"])
    assert "transactions-2026" in out["getEntities"]  # the pii dataset, from the ORed filter
    assert len(out["getEntitiesPaged"]) == 3
    assert out["getEntitiesByRefs"] == ["fraud-scorer", None, "fraud"]
    assert out["queryEntities"]["totalItems"] == 16
    assert out["queryEntities"]["names"] == sorted(out["queryEntities"]["names"], reverse=True)
    assert len(set(out["queryEntities"]["names"])) == 16
    predicate = out["queryEntitiesByPredicate"]
    assert predicate["names"] == sorted(predicate["names"])
    assert len(predicate["names"]) == predicate["totalItems"] > 3
    assert "fraud-scorer" in out["queryEntitiesFullText"]
    assert out["streamEntities"] == 13
    assert out["getEntityByRef"]["owner"] == "fraud"
    assert out["getEntityByRefMissing"] is None
    assert out["getEntityByName"] == "fraud"
    assert out["getEntityAncestors"]["refs"][:2] == [
        "user:default/alice",
        "location:default/northwind-demo",
    ]
    assert out["getEntityFacets"]["kind"] == [{"value": "Model", "count": 8}]
    assert out["refreshEntity"] == "ok"
    assert out["getLocations"] == ["file"]
    assert out["addLocationDryRun"] == {"exists": False, "entities": ["client-made"]}
    assert out["addLocation"]["target"] == str(made)
    assert out["addLocation"]["entityRef"].startswith("location:default/generated-")
    assert out["getLocationById"] == str(made)
    assert out["getLocationByRef"] is True
    assert out["getLocationByEntity"] is True
    assert out["queryLocations"] == 2
    assert out["streamLocations"] == 2
    assert out["updateLocation"] == str(moved)
    assert out["afterUpdate"] == "client-moved"
    assert out["removeEntityByUid"] is None
    assert out["removeLocationById"] is None
    assert out["validateEntity"] == {"valid": True}
    assert out["validateEntityInvalid"] == {"valid": False, "errors": ["InputError"]}
    assert out["analyzeLocation"] == [["client-moved", False]]
    assert out["addLocationOutside"]["status"] == 400
    assert out["addLocationOutside"]["cause"] == "InputError"
