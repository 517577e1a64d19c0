"""Ingestion: locations read under the rules, whole trees applied at once, problems kept
on the location or the entity, orphans and conflicts, and Paved's demo catalog."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from catalog import service
from catalog.models import CatalogEntity, CatalogLocation
from portal.errors import Conflict, InvalidInput
from portal.settings import CatalogSettings, Settings

from conftest import BACKSTAGE_REFERENCE, BOTH_BACKENDS


@pytest.fixture
def catalog_settings(settings: Settings) -> CatalogSettings:
    return settings.catalog


def component(name: str, owner: str = "fraud", **spec: object) -> str:
    extra = "".join(f"\n  {key}: {value}" for key, value in spec.items())
    return (
        dedent(
            f"""\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: {name}
        spec:
          type: service
          lifecycle: production
          owner: {owner}"""
        )
        + extra
    )


def write(path: Path, *documents: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(documents) + "\n")
    return path


def location(target: Path) -> str:
    return dedent(
        f"""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata:
          name: {target.stem}-loc
        spec:
          targets: [./{target.name}]"""
    )


def entities(engine: Engine) -> dict[str, CatalogEntity]:
    with Session(engine) as session:
        return {row.ref: row for row in session.exec(select(CatalogEntity)).all()}


@BOTH_BACKENDS
def test_the_demo_catalog_loads_whole_with_relations_both_ways(
    backend: str, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        registered = service.register_demo(session, settings.catalog)
        session.commit()
    assert registered.problems == []
    assert registered.outcome is not None
    rows = entities(engine)
    assert registered.outcome.added == len(rows) > 80
    kinds = {row.kind_key for row in rows.values()}
    assert {"group", "user", "system", "component", "api", "model", "dataset"} <= kinds
    with Session(engine) as session:
        relations = service.relations_by_source(
            session,
            ["user:default/alice", "group:default/fraud", "dataset:default/transactions-2026"],
        )
    assert {"type": "memberOf", "targetRef": "group:default/fraud"} in relations[
        "user:default/alice"
    ]
    assert {"type": "hasMember", "targetRef": "user:default/alice"} in relations[
        "group:default/fraud"
    ]
    assert {"type": "trainingDataFor", "targetRef": "model:default/fraud-scorer"} in relations[
        "dataset:default/transactions-2026"
    ]


def test_a_file_outside_the_roots_is_refused_and_nothing_is_registered(
    engine: Engine, catalog_settings: CatalogSettings, tmp_path: Path
) -> None:
    outside = write(tmp_path / "elsewhere" / "catalog-info.yaml", component("scorer"))
    with Session(engine) as session, pytest.raises(InvalidInput) as refused:
        service.add_location(session, "file", str(outside), by="t", settings=catalog_settings)
    assert refused.value.errors[0].field == "target"
    assert "outside the catalog's file roots" in refused.value.errors[0].message
    with Session(engine) as session:
        assert session.exec(select(CatalogLocation)).all() == []


def test_a_broken_file_keeps_what_it_held_and_says_why_on_the_location(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    child = write(repos / "team" / "services.yaml", component("scorer"), component("ranker"))
    root = write(repos / "team" / "catalog-info.yaml", location(child))
    with Session(engine) as session:
        registered = service.add_location(
            session, "file", str(root), by="t", settings=catalog_settings
        )
        session.commit()
        location_id = registered.location.id
    assert {"component:default/scorer", "component:default/ranker"} <= set(entities(engine))

    child.write_text("apiVersion: [unclosed\n")
    with Session(engine) as session:
        loc = service.get_location(session, location_id)
        service.refresh_location(session, loc, catalog_settings)
        session.commit()
        errors = service.get_location(session, location_id).errors
    rows = entities(engine)
    assert not rows["component:default/scorer"].is_orphan  # kept as it was
    assert [error["source"] for error in errors] == [f"file:{child}"]
    assert errors[0]["message"].startswith("invalid YAML")


def test_an_entity_no_longer_emitted_becomes_an_orphan_and_comes_back(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    file = write(repos / "catalog-info.yaml", component("scorer"), component("ranker"))
    with Session(engine) as session:
        location_id = service.add_location(
            session, "file", str(file), by="t", settings=catalog_settings
        ).location.id
        session.commit()
    write(file, component("scorer"))

    def refresh() -> dict[str, CatalogEntity]:
        with Session(engine) as session:
            loc = service.get_location(session, location_id)
            service.refresh_location(session, loc, catalog_settings)
            session.commit()
        return entities(engine)

    rows = refresh()
    ranker = rows["component:default/ranker"]
    assert ranker.is_orphan
    assert ranker.body["metadata"]["annotations"]["backstage.io/orphan"] == "true"
    assert not rows["component:default/scorer"].is_orphan
    write(file, component("scorer"), component("ranker"))
    rows = refresh()
    assert not rows["component:default/ranker"].is_orphan
    assert (
        "backstage.io/orphan"
        not in rows["component:default/ranker"].body["metadata"]["annotations"]
    )


def test_an_invalid_entity_is_reported_with_its_field_and_the_rest_still_loads(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    file = write(
        repos / "catalog-info.yaml",
        component("scorer"),
        component("bad name!"),
        "apiVersion: backstage.io/v1alpha1\nkind: Spaceship\nmetadata:\n  name: x\nspec: {}",
    )
    with Session(engine) as session:
        registered = service.add_location(
            session, "file", str(file), by="t", settings=catalog_settings
        )
        session.commit()
    assert {ref for ref in entities(engine) if not ref.startswith("location:")} == {
        "component:default/scorer"
    }
    fields = {problem["field"] for problem in registered.problems}
    assert {"metadata.name", "kind"} <= fields
    assert all(problem["source"] == f"file:{file}" for problem in registered.problems)


def test_a_location_loop_is_named_and_stops(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    first, second = repos / "a.yaml", repos / "b.yaml"
    write(first, location(second), component("scorer"))
    write(second, location(first))
    with Session(engine) as session:
        registered = service.add_location(
            session, "file", str(first), by="t", settings=catalog_settings
        )
        session.commit()
    loops = [p for p in registered.problems if p["message"].startswith("location loop")]
    assert len(loops) == 1
    assert f"file:{first} -> file:{second} -> file:{first}" in loops[0]["message"]
    assert "component:default/scorer" in entities(engine)


def test_two_locations_claiming_one_entity_is_a_conflict_on_the_second(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    one = write(repos / "one.yaml", component("scorer", owner="fraud"))
    two = write(repos / "two.yaml", component("scorer", owner="churn"), component("ranker"))
    with Session(engine) as session:
        service.add_location(session, "file", str(one), by="t", settings=catalog_settings)
        second_id = service.add_location(
            session, "file", str(two), by="t", settings=catalog_settings
        ).location.id
        session.commit()
    rows = entities(engine)
    assert rows["component:default/scorer"].body["spec"]["owner"] == "fraud"
    assert "component:default/ranker" in rows
    with Session(engine) as session:
        stored = service.get_location(session, second_id).errors
    assert any(f"file:{one}" in error["message"] for error in stored)
    with Session(engine) as session, pytest.raises(Conflict):
        service.add_location(session, "file", str(two), by="t", settings=catalog_settings)


def test_deleting_a_location_removes_its_entities(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    file = write(repos / "catalog-info.yaml", component("scorer"))
    with Session(engine) as session:
        location_id = service.add_location(
            session, "file", str(file), by="t", settings=catalog_settings
        ).location.id
        session.commit()
        service.delete_location(session, location_id)
        session.commit()
    assert entities(engine) == {}
    with Session(engine) as session:
        assert (
            session.exec(
                select(CatalogLocation).where(col(CatalogLocation.id) == location_id)
            ).all()
            == []
        )


def test_backstages_example_catalog_loads_without_errors_but_its_unreachable_placeholders(
    engine: Engine, settings: Settings
) -> None:
    """Everything Backstage's examples reach (entities, organisation, templates) loads; the
    API definitions given as ``$text: https://...`` cannot be fetched here (no host is
    allowed), which is a processing error on those entities, as in Backstage."""
    reference = BACKSTAGE_REFERENCE
    assert reference.is_dir(), f"set PAVED_CATALOG__BACKSTAGE_REFERENCE; {reference} is missing"
    catalog_settings = settings.catalog.model_copy(update={"file_roots": [reference]})
    with Session(engine) as session:
        registered = service.add_location(
            session,
            "file",
            str(reference / "examples" / "everything.yaml"),
            by="t",
            settings=catalog_settings,
        )
        session.commit()
    location_problems = service_location_errors(engine)
    assert location_problems == []
    rows = entities(engine)
    assert registered.outcome is not None
    assert len(rows) == registered.outcome.added > 40
    kinds = {row.kind_key for row in rows.values()}
    assert {
        "component",
        "api",
        "system",
        "domain",
        "resource",
        "group",
        "user",
        "template",
    } <= kinds
    assert "component:default/invalid component" not in rows
    with_errors = {ref for ref, row in rows.items() if row.errors}
    assert with_errors == {
        "api:default/wayback-search",
        "api:default/spotify",
        "api:default/wayback-archive",
    }
    spotify = rows["api:default/spotify"]
    assert spotify.body["status"]["items"][0]["type"] == "backstage.io/catalog-processing"
    assert "github.com is not a host the catalog may read from" in spotify.errors[0]["message"]
    assert rows["component:default/petstore"].errors == []


def service_location_errors(engine: Engine) -> list[dict[str, object]]:
    with Session(engine) as session:
        return [error for location in service.list_locations(session) for error in location.errors]


def test_placeholders_read_files_beside_the_entity_under_the_same_rules(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path, tmp_path: Path
) -> None:
    (repos / "openapi.yaml").write_text("openapi: 3.0.0\ninfo: {title: Scoring, version: '1'}\n")
    (repos / "labels.json").write_text('{"tier": "gold"}')
    (tmp_path / "secret.txt").write_text("not for the catalog")
    api = dedent(
        """\
        apiVersion: backstage.io/v1alpha1
        kind: API
        metadata:
          name: {name}
        spec:
          type: openapi
          lifecycle: production
          owner: fraud
          definition:
            $text: {target}"""
    )
    file = write(
        repos / "catalog-info.yaml",
        api.format(name="scoring", target="./openapi.yaml"),
        api.format(name="sneaky", target="../secret.txt"),
    )
    with Session(engine) as session:
        service.add_location(session, "file", str(file), by="t", settings=catalog_settings)
        session.commit()
    rows = entities(engine)
    assert rows["api:default/scoring"].body["spec"]["definition"].startswith("openapi: 3.0.0")
    assert rows["api:default/scoring"].errors == []
    sneaky = rows["api:default/sneaky"]
    assert sneaky.body["spec"]["definition"] == {"$text": "../secret.txt"}
    assert "outside the catalog's file roots" in sneaky.errors[0]["message"]
    assert sneaky.errors[0]["field"] == "spec.definition"


def test_url_locations_are_read_only_from_allowed_hosts(engine: Engine, settings: Settings) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse
    from starlette.routing import Route

    from processes import serve_in_thread

    files = {
        "/repo/catalog-info.yaml": location_yaml_for("./services.yaml"),
        "/repo/services.yaml": component("scorer"),
    }
    requested: list[str] = []

    async def serve(request: Request) -> PlainTextResponse | RedirectResponse:
        requested.append(request.url.path)
        if request.url.path == "/redirect.yaml":
            return RedirectResponse("http://example.invalid/catalog-info.yaml")
        if request.url.path not in files:
            return PlainTextResponse("not here", status_code=404)
        return PlainTextResponse(files[request.url.path])

    app = Starlette(routes=[Route("/{path:path}", serve)])
    with serve_in_thread(app) as base:
        allowed = settings.catalog.model_copy(update={"url_hosts": ["127.0.0.1"]})
        with Session(engine) as session:
            registered = service.add_location(
                session, "url", f"{base}/repo/catalog-info.yaml", by="t", settings=allowed
            )
            session.commit()
        assert registered.problems == []
        assert "component:default/scorer" in entities(engine)
        assert requested == ["/repo/catalog-info.yaml", "/repo/services.yaml"]

        requested.clear()
        with Session(engine) as session, pytest.raises(InvalidInput) as refused:
            service.add_location(
                session, "url", f"{base}/repo/services.yaml", by="t", settings=settings.catalog
            )
        assert "127.0.0.1 is not a host the catalog may read from" in str(refused.value)
        with Session(engine) as session, pytest.raises(InvalidInput) as redirected:
            service.add_location(session, "url", f"{base}/redirect.yaml", by="t", settings=allowed)
        assert "answered 307" in str(redirected.value)
    assert requested == ["/redirect.yaml"]  # the refused host was never asked; no redirect followed


def location_yaml_for(target: str) -> str:
    return dedent(
        f"""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata:
          name: remote
        spec:
          targets: [{target}]"""
    )


def test_a_file_too_large_or_full_of_aliases_is_refused_with_the_limit_named(
    engine: Engine, catalog_settings: CatalogSettings, repos: Path
) -> None:
    small = catalog_settings.model_copy(update={"max_file_bytes": 2048})
    big = write(repos / "big.yaml", component("scorer", description="x" * 4000))
    with Session(engine) as session, pytest.raises(InvalidInput) as refused:
        service.add_location(session, "file", str(big), by="t", settings=small)
    problem = refused.value.errors[0]
    assert (problem.field, problem.expected) == (
        "target",
        "at most 2,048 bytes (catalog.max_file_bytes)",
    )
    bomb = "\n".join(
        ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        + [
            f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 0 else f'l{i - 1}'}"] * 9) + "]"
            for i in range(20)
        ]
    )
    with Session(engine) as session, pytest.raises(InvalidInput) as exploded:
        service.add_location(
            session,
            "file",
            str(write(repos / "bomb.yaml", bomb)),
            by="t",
            settings=catalog_settings,
        )
    assert "aliases" in exploded.value.errors[0].message
    assert entities(engine) == {}
