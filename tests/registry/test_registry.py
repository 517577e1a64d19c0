"""The model registry on a real MLflow store: versions registered from runs with their
lineage, approvals under separation of duties, and the champion alias for production."""

from __future__ import annotations

from fastapi.testclient import TestClient
from registry.conftest import MODEL, LogRun
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.registry import service
from portal.settings import Settings
from portal.tracking import tracking_client

from conftest import ALICE, CAROL

VERSIONS = f"/api/registry/models/{MODEL}/versions"


def test_a_version_is_registered_approved_by_another_lead_then_made_champion(
    model_entity: str, log_run: LogRun, alice: TestClient, carol: TestClient, dave: TestClient,
    client: TestClient,
) -> None:  # fmt: skip
    run_id = log_run(0.5)
    registered = alice.post(VERSIONS, json={"run_id": run_id, "description": "first cut"})
    assert registered.status_code == 201, registered.text
    version = registered.json()
    assert version["version"] == "1"
    assert version["registered_by"] == ALICE
    assert version["description"] == "first cut"
    assert version["params"] == {"C": "0.5"}
    assert version["metrics"] == {"accuracy": 0.9}
    assert version["git_commit"] == "0123456789abcdef"
    assert version["trained_on"] == ["dataset:default/customers"]
    assert version["approved"] is False

    champion = f"/api/registry/models/{MODEL}/aliases/champion"
    early = carol.put(champion, json={"version": "1"})
    assert early.status_code == 403
    assert "version 1 of churn is not approved for production" in early.json()["reasons"][0]

    approvals = f"{VERSIONS}/1/approvals"
    engineer = alice.post(approvals, json={})
    assert engineer.status_code == 403
    assert engineer.json()["reasons"] == [
        "none of your roles (ml_engineer) allows registry.model.approve"
    ]
    other_team = dave.post(approvals, json={})
    assert other_team.status_code == 403
    assert (
        "only a team lead of group:default/fraud may approve versions of churn"
        in other_team.json()["reasons"]
    )
    approved = carol.post(approvals, json={"comment": "holdout AUC is fine"})
    assert approved.status_code == 201, approved.text
    assert approved.json()["approved"] is True
    assert approved.json()["approvals"][0]["decided_by"] == CAROL

    promoted = carol.put(champion, json={"version": "1"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["aliases"] == ["champion"]
    challenger = carol.post(VERSIONS, json={"run_id": log_run(2.0)}).json()
    assert challenger["version"] == "2"
    own = carol.post(f"{VERSIONS}/2/approvals", json={})
    assert own.status_code == 403
    assert own.json()["reasons"] == [
        "you registered version 2 of churn, so another team lead must approve it"
    ]
    assert carol.put(
        f"/api/registry/models/{MODEL}/aliases/challenger", json={"version": "2"}
    ).status_code == 200  # fmt: skip

    listed = alice.get(VERSIONS).json()
    assert [(v["version"], v["aliases"], v["approved"]) for v in listed] == [
        ("2", ["challenger"], False),
        ("1", ["champion"], True),
    ]
    models = alice.get("/api/registry/models").json()
    assert models[0]["entity"] == model_entity
    assert models[0]["owner"] == "group:default/fraud"
    assert models[0]["aliases"] == {"champion": "1", "challenger": "2"}
    events = client.get("/api/audit/events?action=registry.model.approve").json()
    outcomes = sorted((e["actor"], e["allowed"]) for e in events["events"])
    assert outcomes == [
        (ALICE, False), (CAROL, False), (CAROL, True), ("user:default/dave", False)
    ]  # fmt: skip


def test_the_registry_tab_shows_versions_lineage_and_the_model_card(
    model_entity: str, log_run: LogRun, alice: TestClient
) -> None:
    alice.post(VERSIONS, json={"run_id": log_run()})
    tab = alice.get("/registry/tabs/model/default/churn")
    assert tab.status_code == 200
    assert "Predicts which customers leave." in tab.text
    assert 'data-version="1"' in tab.text
    assert "0123456789" in tab.text
    assert "dataset:default/customers" in tab.text


def test_bad_registrations_name_the_field(
    model_entity: str, log_run: LogRun, alice: TestClient, carol: TestClient
) -> None:
    unknown = alice.post(VERSIONS, json={"run_id": "0" * 32})
    assert unknown.status_code == 404
    no_model = alice.post(VERSIONS, json={"run_id": log_run(with_model=False)})
    assert no_model.status_code == 422, no_model.text
    assert no_model.json()["errors"][0]["field"] == "artifact_path"
    missing = alice.post(VERSIONS, json={})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "run_id"
    bad_alias = carol.put(f"/api/registry/models/{MODEL}/aliases/champion", json={"version": "x"})
    assert bad_alias.status_code == 422
    assert bad_alias.json()["errors"][0]["field"] == "version"
    assert alice.get(f"{VERSIONS}").status_code == 404  # nothing was registered


def test_the_approve_button_goes_back_only_to_a_page_of_this_portal(
    model_entity: str, log_run: LogRun, alice: TestClient, carol: TestClient
) -> None:
    alice.post(VERSIONS, json={"run_id": log_run()})
    form = {"model": MODEL, "version": "1", "back": "//evil.example/phish"}
    answer = carol.post("/registry/approvals", data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    home = {**form, "back": "/catalog/model/default/churn?tab=registry"}
    again = carol.post("/registry/aliases", data={**home, "alias": "champion"},
                       follow_redirects=False)  # fmt: skip
    assert again.headers["location"] == "/catalog/model/default/churn?tab=registry"


def test_models_are_listed_with_their_counts_across_pages(
    model_entity: str, log_run: LogRun, alice: TestClient, settings: Settings, engine: Engine
) -> None:
    run_id = log_run()
    for _ in range(2):
        assert alice.post(VERSIONS, json={"run_id": run_id}).status_code == 201
    client = tracking_client(settings)
    for name, count in (("alpha", 3), ("beta", 1)):  # registered outside Paved, no entity
        client.create_registered_model(name)
        for _ in range(count):
            client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)

    with Session(engine) as session:
        paged = service.list_models(session, settings, page_size=2)  # several pages each
    listed = alice.get("/api/registry/models").json()

    shown = {m.name: (m.versions, m.latest_version, m.entity, m.owner) for m in paged}
    assert shown == {
        "alpha": (3, "3", None, None),
        "beta": (1, "1", None, None),
        MODEL: (2, "2", model_entity, "group:default/fraud"),
    }
    assert {m["name"]: (m["versions"], m["latest_version"]) for m in listed} == {
        name: figures[:2] for name, figures in shown.items()
    }
