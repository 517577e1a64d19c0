"""The scaffolder's pages: templates to pick, forms checked as they fill, a run's page."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from catalog import service as catalog
from catalog.models import CatalogEntity
from catalog.refs import EntityRef
from portal.settings import Settings
from portal.worker import Worker
from scaffolder.models import ScaffolderRun
from tests.scaffolder.conftest import FRAUD, TemplateMaker
from tests.scaffolder.test_tasks import SERVICE, SKELETON

from conftest import ClientFactory

FORM = "/create/templates/default/model-service"
HTML = {"Accept": "text/html"}

REPO_TEMPLATE = SERVICE.replace(
    "owner: {type: string, title: Owner, ui:field: OwnerPicker}",
    "owner: {type: string, title: Owner, ui:field: OwnerPicker}\n"
    "        repoUrl: {type: string, title: Where, ui:field: RepoUrlPicker}\n"
    "        tier: {type: string, enum: [gold, silver], default: silver}\n"
    "        gpu: {type: boolean, title: Needs a GPU}",
)


def test_the_create_page_lists_the_catalogs_templates(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    page = alice.get("/create", headers=HTML)
    assert page.status_code == 200
    assert '<a href="/create/templates/default/model-service">Model service</a>' in page.text
    assert 'href="/create"' in page.text  # the navigation's Create entry


def test_a_form_has_a_field_per_parameter_with_pickers(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    make_template("model-service", REPO_TEMPLATE, SKELETON)
    page = alice.get(FORM, headers=HTML)
    assert page.status_code == 200
    html = page.text
    assert 'name="name"' in html
    assert re.search(r'name="name"[^>]*required', html)
    # The owner picker offers the groups of whoever fills the form.
    assert '<option value="group:default/fraud">fraud (group:default/fraud)</option>' in html
    assert 'name="repoUrl.host"' in html
    assert '<option value="paved">paved (this portal)</option>' in html
    assert '<option value="silver" selected>' in html  # the schema's default
    assert 'type="checkbox" id="field-gpu"' in html
    assert 'hx-post="/create/templates/default/model-service/check"' in html


def test_a_field_is_checked_as_it_changes_and_untouched_ones_are_left_alone(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    checked = alice.post(
        f"{FORM}/check", data={"name": "Not A Name"}, headers={**HTML, "HX-Request": "true"}
    )
    assert checked.status_code == 200
    assert "<html" not in checked.text  # the form alone, for htmx to swap
    assert 'id="field-name-problems"' in checked.text
    assert "does not match" in checked.text
    assert 'id="field-owner-problems"' not in checked.text  # not filled in yet


def test_a_form_that_does_not_fit_comes_back_with_each_problem_beside_its_field(
    make_template: TemplateMaker, alice: TestClient, engine: Engine
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    sent = alice.post(FORM, data={"name": "Bad Name"}, headers=HTML)
    assert sent.status_code == 422
    assert 'id="field-name-problems"' in sent.text
    assert 'id="field-owner-problems"' in sent.text
    assert 'value="Bad Name"' in sent.text  # nothing typed is lost
    with Session(engine) as session:
        assert session.exec(select(ScaffolderRun)).all() == []


def test_a_filled_form_starts_a_run_whose_page_ends_with_its_links(
    make_template: TemplateMaker, alice: TestClient, worker: Worker
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    sent = alice.post(
        FORM,
        data={"name": "paged", "owner": "group:default/fraud"},
        headers=HTML,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    run_url = sent.headers["location"]
    assert re.fullmatch(r"/create/tasks/\d+", run_url)
    waiting = alice.get(run_url, headers=HTML)
    assert 'data-follow="/api/scaffolder/v2/tasks/' in waiting.text
    assert "Cancel run" in waiting.text

    worker.run_once()

    done = alice.get(run_url, headers=HTML).text
    assert 'data-follow=""' in done
    assert done.count("status-completed") == 4  # three steps and the run
    assert '<a href="/catalog/component/default/paged" role="button">Open in catalog</a>' in done
    assert "git clone file://" in done


def test_someone_who_may_not_run_templates_is_told_why(
    make_template: TemplateMaker, client_as: ClientFactory
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    audrey = client_as("auditor", user="user:default/audrey")
    denied = audrey.post(FORM, data={"name": "x"}, headers=HTML)
    assert denied.status_code == 403
    assert "none of your roles (auditor) allows scaffolder.template.run" in denied.text


DEPENDENT = SERVICE.replace(
    "owner: {type: string, title: Owner, ui:field: OwnerPicker}",
    "owner: {type: string, title: Owner, ui:field: OwnerPicker}\n"
    "        target: {type: string, title: Runs on, enum: [local, kubernetes], default: local}\n"
    "      dependencies:\n"
    "        target:\n"
    "          oneOf:\n"
    "            - properties: {target: {const: local}}\n"
    "            - properties:\n"
    "                target: {const: kubernetes}\n"
    "                namespace: {type: string, title: Namespace}\n"
    "              required: [namespace]",
)


def test_a_field_a_choice_brings_in_appears_when_chosen_and_is_then_required(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    make_template("model-service", DEPENDENT, SKELETON)
    assert 'name="namespace"' not in alice.get(FORM, headers=HTML).text

    checked = alice.post(
        f"{FORM}/check",
        data={"name": "scorer", "target": "kubernetes"},
        headers={**HTML, "HX-Request": "true"},
    )
    assert re.search(r'<label for="field-namespace">Namespace <span[^>]*>\*</span>', checked.text)

    sent = alice.post(
        FORM, data={"name": "scorer", "owner": "group:default/fraud", "target": "kubernetes"}
    )
    assert sent.status_code == 422
    assert re.search(r'id="field-namespace-problems"[^>]*>missing', sent.text)


ENTITIES = """
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: fraud-scorer, title: Fraud scorer}
spec: {type: service, lifecycle: production, owner: group:default/fraud}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: demand-forecaster}
spec: {type: service, lifecycle: production, owner: group:default/demand}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: fraud-notebooks}
spec: {type: library, lifecycle: production, owner: group:default/fraud}
"""
PICKING = SERVICE.replace(
    "owner: {type: string, title: Owner, ui:field: OwnerPicker}",
    "owner: {type: string, title: Owner, ui:field: OwnerPicker}\n"
    "        upstream:\n"
    "          type: string\n"
    "          title: Upstream service\n"
    "          ui:field: EntityPicker\n"
    "          ui:options:\n"
    "            catalogFilter: {kind: Component, spec.type: service}\n"
    "        mine: {type: string, title: One of ours, ui:field: OwnedEntityPicker}",
)


def test_an_entity_picker_offers_the_catalogs_matches_as_one_types(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    make_template("entities", ENTITIES)
    make_template("model-service", PICKING, SKELETON)
    form = alice.get(FORM, headers=HTML).text
    search = re.search(r'id="field-upstream"[^>]*hx-get="([^"]+)"', form, re.S)
    assert search is not None
    url = search.group(1).replace("&amp;", "&")
    assert 'list="field-upstream-choices"' in form

    offered = alice.get(f"{url}&upstream=scorer", headers=HTML)
    assert offered.status_code == 200
    assert (
        offered.text.strip()
        == '<option value="component:default/fraud-scorer">Fraud scorer</option>'
    )
    everything = alice.get(f"{url}&upstream=", headers=HTML).text
    assert "demand-forecaster" in everything
    assert "fraud-notebooks" not in everything  # a library, not a service

    owned = re.search(r'id="field-mine"[^>]*hx-get="([^"]+)"', form, re.S)
    assert owned is not None
    ours = alice.get(owned.group(1).replace("&amp;", "&") + "&mine=", headers=HTML)
    assert "fraud-notebooks" in ours.text
    assert "demand-forecaster" not in ours.text  # another team's


LINKED = (
    SERVICE.replace(
        "owner: {type: string, title: Owner, ui:field: OwnerPicker}",
        "owner: {type: string, title: Owner, ui:field: OwnerPicker}\n"
        "        homepage: {type: string, pattern: '^[^ ]+$'}",
    )
    + """
  output:
    links:
      - {title: Homepage, url: "${{ parameters.homepage }}"}
      - {title: Docs, url: "https://docs.example.com/${{ parameters.name }}"}
      - {title: Odd ref, entityRef: "a:b:c"}
"""
)


def test_an_output_link_that_is_not_a_web_address_is_shown_as_text(
    make_template: TemplateMaker, alice: TestClient, worker: Worker
) -> None:
    make_template("model-service", LINKED, SKELETON)
    form = alice.get(FORM, headers=HTML).text
    assert 'pattern="[^ ]+"' in form  # the schema's anchors go, its meaning stays
    sent = alice.post(
        FORM,
        data={"name": "linked", "owner": FRAUD, "homepage": "javascript:alert(1)"},
        headers=HTML,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    worker.run_once()

    done = alice.get(sent.headers["location"], headers=HTML)
    assert done.status_code == 200
    assert 'href="javascript' not in done.text
    assert "Homepage: <code>javascript:alert(1)</code>" in done.text
    assert '<a href="https://docs.example.com/linked" role="button">Docs</a>' in done.text
    assert "Odd ref: <code>a:b:c</code>" in done.text


def test_a_required_field_left_to_its_default_is_accepted_as_the_api_accepts_it(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    with_default = REPO_TEMPLATE.replace("required: [name, owner]", "required: [name, owner, tier]")
    make_template("model-service", with_default, SKELETON)

    sent = alice.post(
        FORM, data={"name": "defaulted", "owner": FRAUD}, headers=HTML, follow_redirects=False
    )

    assert sent.status_code == 303, sent.text


TEAMS = """
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: fraud}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: churn}
spec: {type: team, children: []}
"""


def test_the_owner_picker_offers_the_teams_the_policy_lets_one_create_for(
    make_template: TemplateMaker,
    alice: TestClient,
    client: TestClient,
    template_root: Path,
    engine: Engine,
    settings: Settings,
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    teams = template_root / "teams.yaml"
    teams.write_text(textwrap.dedent(TEAMS))
    with Session(engine) as session:
        catalog.add_location(session, "file", str(teams), by="tests", settings=settings.catalog)
        session.commit()

    for_alice = alice.get(FORM, headers=HTML).text
    for_an_admin = client.get(FORM, headers=HTML).text

    assert 'value="group:default/fraud"' in for_alice
    assert 'value="group:default/churn"' not in for_alice  # not her team: the policy says no
    for team in ("fraud", "churn", "platform"):
        assert f'value="group:default/{team}"' in for_an_admin


def test_a_posted_form_reads_its_template_once(
    make_template: TemplateMaker, alice: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    read: list[str] = []
    get_entity = catalog.get_entity

    def counted(session: Session, ref: EntityRef) -> CatalogEntity:
        read.append(ref.key)
        return get_entity(session, ref)

    # Not a mock: every read still reaches the database; this only counts them.
    monkeypatch.setattr(catalog, "get_entity", counted)
    sent = alice.post(
        FORM,
        data={"name": "once", "owner": "group:default/fraud"},
        headers=HTML,
        follow_redirects=False,
    )

    assert sent.status_code == 303
    assert [ref for ref in read if ref.startswith("template:")] == [
        "template:default/model-service"
    ]
