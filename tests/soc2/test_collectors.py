"""What each collector shows, and what it flags for an auditor: stale tokens, leavers who
kept access, unscanned datasets, self-approvals, production changes nobody approved."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.pii import evidence as pii_evidence
from plugins.pii.models import PiiScan
from plugins.registry import evidence as registry_evidence
from plugins.registry.models import ModelApproval
from plugins.serving import evidence as serving_evidence
from plugins.serving.models import Deployment, DeploymentEvent
from portal import access_evidence
from portal.audit import append_alone
from portal.db import utcnow
from portal.evidence import EvidencePeriod
from portal.models import ApiToken
from portal.policy_versions import record_version
from portal.settings import Settings

from .conftest import ALICE, CAROL

TODAY = utcnow().date()
NOW = utcnow()
DATASETS = """\
apiVersion: paved.dev/v1alpha1
kind: Dataset
metadata:
  name: {name}
spec:
  owner: group:default/fraud
  lifecycle: production
  location: ./{name}.csv
  format: csv
  classification: {classification}
"""


def _period(engine: Engine, settings: Settings, days: int = 0) -> EvidencePeriod:
    return EvidencePeriod(TODAY - timedelta(days=days), TODAY, engine, settings)


def _collector(name: str):  # type: ignore[no-untyped-def]
    return next(c for c in access_evidence.COLLECTORS if c.name == name)


def test_tokens_unused_for_long_are_flagged(engine: Engine, settings: Settings) -> None:
    with Session(engine) as session:
        for name, used in (("ci", NOW - timedelta(days=200)), ("laptop", NOW)):
            session.add(
                ApiToken(
                    name=name,
                    user_ref=ALICE,
                    roles=["ml_engineer"],
                    secret_hash=name * 8,
                    hint=name,
                    created_by=ALICE,
                    created_at=NOW - timedelta(days=300),
                    last_used_at=used,
                )
            )
        session.commit()
    evidence = _collector("access.tokens").collect(_period(engine, settings))
    assert [(r["name"], r["state"]) for r in evidence.rows] == [
        ("ci", "active"),
        ("laptop", "active"),
    ]
    assert len(evidence.exceptions) == 1
    assert evidence.exceptions[0].startswith(
        f"token 1 (ci) of {ALICE} is still valid but was last used"
    )


@pytest.mark.usefixtures("activity")
def test_joiners_and_leavers_who_kept_a_token(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = NOW - timedelta(days=200)
    with Session(engine) as session:
        session.add(
            ApiToken(
                name="old",
                user_ref="user:default/gone",
                roles=["ml_engineer"],
                secret_hash="g" * 64,
                hint="g",
                created_by="tests",
                created_at=NOW - timedelta(days=400),
            )
        )
        session.commit()
    # The audit log is append-only: the old sign-in is written as if it were then.
    monkeypatch.setattr("portal.audit.utcnow", lambda: long_ago)
    append_alone(
        engine,
        actor="user:default/gone",
        action="auth.session.create",
        allowed=True,
        outcome="succeeded",
    )
    monkeypatch.undo()
    evidence = _collector("access.people").collect(_period(engine, settings))
    people = {row["person"]: row for row in evidence.rows}
    assert people[ALICE]["joiner"] is True
    assert people[ALICE]["roles"] == ["ml_engineer"]
    assert people["user:default/gone"]["inactive"] is True
    assert evidence.summary["leavers_with_access"] == 1
    assert evidence.exceptions[0].startswith("user:default/gone was last seen")


@pytest.mark.usefixtures("activity")
def test_decisions_are_counted_by_action_and_outcome(engine: Engine, settings: Settings) -> None:
    evidence = _collector("policy.decisions").collect(_period(engine, settings))
    assert {
        "action": "serving.deployment.create",
        "succeeded": 0,
        "failed": 0,
        "denied": 1,
    } in evidence.rows
    assert evidence.summary["denied"] == 1


def test_policy_versions_name_the_files_that_changed(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "rules" / "policies"
    folder.mkdir(parents=True)
    (folder / "a.rego").write_text("package a\n")
    (folder / "b.rego").write_text("package b\n")
    record_version(engine, [folder])
    (folder / "b.rego").write_text("package b\n# changed\n")
    record_version(engine, [folder])
    evidence = _collector("policy.versions").collect(_period(engine, settings))
    assert [row["changed_files"] for row in evidence.rows] == [[], ["rules/policies/b.rego"]]
    assert evidence.exceptions == []


def test_unscanned_or_misclassified_datasets_are_flagged_and_no_value_is_shown(
    engine: Engine, settings: Settings, people_root: Path
) -> None:
    from catalog import service as catalog

    path = people_root / "datasets.yaml"
    path.write_text(
        "---\n".join(
            DATASETS.format(name=name, classification=classification)
            for name, classification in (("customers", "public"), ("events", "internal"))
        )
    )
    with Session(engine) as session:
        catalog.add_location(session, "file", str(path), by="tests", settings=settings.catalog)
        session.add(
            PiiScan(
                dataset="dataset:default/customers",
                source="customers.csv",
                status="completed",
                requested_by=ALICE,
                finished_at=NOW,
                rows_scanned=100,
                has_pii=True,
                columns=[
                    {
                        "column": "email",
                        "values": 100,
                        "findings": [
                            {
                                "entity": "EMAIL_ADDRESS",
                                "count": 97,
                                "examples": ["j***@example.com"],
                            }
                        ],
                    }
                ],
            )
        )
        session.commit()
    evidence = pii_evidence.COLLECTOR.collect(_period(engine, settings))
    assert [(r["dataset"], r["types_found"]) for r in evidence.rows] == [
        ("dataset:default/customers", ["EMAIL_ADDRESS (97)"]),
        ("dataset:default/events", []),
    ]
    assert evidence.exceptions == [
        "dataset:default/customers holds personal data (EMAIL_ADDRESS) but is classified as public",
        "dataset:default/events was never scanned for personal data",
    ]
    assert evidence.summary["coverage_percent"] == 50.0
    assert "example.com" not in json.dumps(evidence.rows)


def test_self_approvals_and_unapproved_production_changes_are_flagged(
    engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        session.add(
            ModelApproval(
                model="churn",
                version="3",
                decision="approved",
                requested_by=ALICE,
                decided_by=CAROL,
                decided_at=NOW - timedelta(hours=2),
            )
        )
        session.add(
            ModelApproval(
                model="churn",
                version="4",
                decision="approved",
                requested_by=CAROL,
                decided_by=CAROL,
                decided_at=NOW - timedelta(hours=1),
            )
        )
        deployment = Deployment(
            name="churn-production",
            model="churn",
            owner="group:default/fraud",
            environment="production",
            runtime="local",
            created_by=ALICE,
        )
        session.add(deployment)
        session.flush()
        assert deployment.id is not None
        for kind, version, at in (
            ("deploy", "3", NOW - timedelta(minutes=90)),
            ("deploy", "5", NOW - timedelta(minutes=30)),
            ("rollback", "3", NOW - timedelta(minutes=10)),
        ):
            session.add(
                DeploymentEvent(
                    deployment_id=deployment.id,
                    at=at,
                    kind=kind,
                    actor=ALICE,
                    message=f"{kind} {version}",
                    stable_version=version,
                )
            )
        session.commit()
    period = _period(engine, settings, days=1)  # events 90 minutes back may be yesterday
    approvals = registry_evidence.COLLECTOR.collect(period)
    assert approvals.summary == {"decisions": 2, "approved": 2, "rejected": 0}
    assert approvals.exceptions == [f"churn version 4 was approved by {CAROL}, who registered it"]
    changes, incidents = (c.collect(period) for c in serving_evidence.COLLECTORS)
    assert [(r["change"], r["version"], r["approved_by"]) for r in changes.rows] == [
        ("deploy", "3", CAROL),
        ("deploy", "5", None),
        ("rollback", "3", CAROL),
    ]
    assert len(changes.exceptions) == 1
    assert "deploy of churn version 5" in changes.exceptions[0]
    assert [(r["kind"], r["environment"]) for r in incidents.rows] == [("rollback", "production")]
