"""A well-behaved third-party plugin using every hook, written as an outside author would."""

from pathlib import Path
from typing import Annotated

import click
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal import (
    Action,
    EntityTab,
    Identity,
    NavItem,
    ReadinessCheck,
    TaskHandler,
    hookimpl,
    requires,
)
from scaffolder.steps import StepAction, StepContext

LINEAGE_READ = Action("lineage.graph.read", "See how data sets and models derive")
LINEAGE_WRITE = Action("lineage.graph.update", "Record a derivation")
TEMPLATES = Path(__file__).parent / "lineage_templates"

router = APIRouter()
events: list[str] = []


@router.get("/api/lineage/edges", dependencies=[requires(LINEAGE_READ)])
def list_edges() -> list[dict[str, str]]:
    return [{"from": "dataset:default/transactions", "to": "model:default/churn"}]


@router.get("/lineage", dependencies=[requires(LINEAGE_READ)])
def lineage_page(request: Request) -> HTMLResponse:
    return request.app.state.shell.render(request, "lineage/page.html", {"edges": 1})


@router.post("/api/lineage/edges", status_code=201)
def record_edge(identity: Annotated[Identity, requires(LINEAGE_WRITE)]) -> dict[str, str]:
    return {"recorded_by": identity.ref}


def count_edges(ctx):  # type: ignore[no-untyped-def]
    ctx.log(f"counting edges for {ctx.params.get('model')}")
    return {"edges": 1}


@click.command("lineage")
@click.argument("model")
def lineage_command(model: str) -> None:
    """Print the lineage of MODEL."""
    click.echo(f"{model} <- dataset:default/transactions")


def record_lineage(context: StepContext, given: dict[str, str]) -> dict[str, str]:
    context.log(f"{given['model']} derives from {given['dataset']}")
    path = context.path("LINEAGE.md", field="input")
    path.write_text(f"{given['dataset']} -> {given['model']}\n")
    return {"edge": f"{given['dataset']}->{given['model']}"}


RECORD_LINEAGE = StepAction(
    id="lineage:record",
    description="Notes where a new model's data comes from",
    run=record_lineage,
    input_schema={
        "type": "object",
        "required": ["model", "dataset"],
        "properties": {"model": {"type": "string"}, "dataset": {"type": "string"}},
    },
    output_schema={"type": "object", "properties": {"edge": {"type": "string"}}},
)


@hookimpl
def paved_scaffolder_actions():  # type: ignore[no-untyped-def]
    return [RECORD_LINEAGE]


@hookimpl
def paved_actions():  # type: ignore[no-untyped-def]
    return [LINEAGE_READ, LINEAGE_WRITE]


@hookimpl
def paved_routes():  # type: ignore[no-untyped-def]
    return [router]


@hookimpl
def paved_nav_items():  # type: ignore[no-untyped-def]
    return [NavItem("Lineage", "/lineage", order=50)]


@hookimpl
def paved_entity_tabs():  # type: ignore[no-untyped-def]
    return [
        EntityTab("lineage", "Lineage", "/lineage/{kind}/{namespace}/{name}", kinds=("Model",)),
        EntityTab("notes", "Notes", "/notes/{kind}/{namespace}/{name}"),
    ]


@hookimpl
def paved_template_dirs():  # type: ignore[no-untyped-def]
    return [TEMPLATES]


@hookimpl
def paved_task_handlers():  # type: ignore[no-untyped-def]
    return [TaskHandler("lineage.count", count_edges, title="Count lineage edges")]


@hookimpl
def paved_readiness_checks():  # type: ignore[no-untyped-def]
    return [ReadinessCheck("lineage-store", lambda app: None)]


@hookimpl
def paved_cli_commands():  # type: ignore[no-untyped-def]
    return [lineage_command]


# Facts the policy reads as input.context.lineage; tests flip them.
facts = {"frozen": False}


@hookimpl
def paved_policy_context(action, user, resource):  # type: ignore[no-untyped-def]
    if action.startswith("lineage."):
        if facts.get("broken"):
            raise RuntimeError("the lineage store is down")
        return {"lineage": dict(facts)}
    return None


@hookimpl
def paved_startup(app, settings):  # type: ignore[no-untyped-def]
    events.append("startup")


@hookimpl
def paved_shutdown(app):  # type: ignore[no-untyped-def]
    events.append("shutdown")


@hookimpl
def paved_demo_data(session, settings):  # type: ignore[no-untyped-def]
    from portal import tasks

    tasks.enqueue(session, "lineage.count", title="Count demo lineage", params={"model": "demo"})
