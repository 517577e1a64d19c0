"""The hook contract between the Paved core and its plugins.

A plugin is a module (or object) registered through the ``paved.plugins`` entry-point
group; it implements any of the hooks below with ``@hookimpl``::

    # pyproject.toml of the plugin's distribution
    [project.entry-points."paved.plugins"]
    lineage = "paved_lineage.plugin"

    # paved_lineage/plugin.py
    from portal import hookimpl, NavItem

    @hookimpl
    def paved_nav_items():
        return [NavItem("Lineage", "/lineage")]

Every hook is called inside a guard: a plugin that raises is logged with its traceback and
marked *degraded* on ``/admin/plugins``; the other plugins' results are still used.
Contribution hooks return a list (or None for nothing); results of all plugins are
concatenated in plugin-name order. No hook here is ``firstresult``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Awaitable

    import click
    from fastapi import APIRouter, FastAPI
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from plugins.serving.runtimes import ServingRuntime
    from plugins.training.backends import TrainingBackend
    from portal.actions import Action
    from portal.evidence import EvidenceCollector
    from portal.health import ReadinessCheck
    from portal.settings import Settings
    from portal.shell import EntityTab, NavItem
    from portal.tasks import TaskHandler
    from portal.usage import UsageSource
    from scaffolder.steps import StepAction

hookspec = pluggy.HookspecMarker("paved")
hookimpl = pluggy.HookimplMarker("paved")


# -- Contributions, collected once when the app (or the CLI) is assembled --------------


@hookspec
def paved_actions() -> list[Action] | None:
    """Declare the policy actions this plugin's routes and services perform.

    Called once when the app is assembled. Return ``Action`` objects named
    ``<area>.<object>.<verb>`` with a one-line description; the policy vocabulary is the
    union of all plugins' actions. An action declared by two plugins is kept from the first
    (by plugin name) and the second plugin is marked degraded. A route may only
    ``requires()`` an action some plugin declares.
    """


@hookspec
def paved_routes() -> list[APIRouter] | None:
    """Contribute HTTP routes: REST endpoints, pages and htmx partials.

    Called once when the app is assembled. Return ``fastapi.APIRouter`` objects; they are
    included as they are, so give them their own ``prefix`` (``/api/<area>`` for REST,
    ``/<area>`` for pages). Every route must declare its action with ``requires(...)``.
    A router marked with ``hot_path`` is tried before every other route, and its reads are
    answered ahead of the framework for callers the gate already let through.
    """


@hookspec
def paved_nav_items() -> list[NavItem] | None:
    """Contribute entries to the navigation shown on every page.

    Called once when the app is assembled. Return ``NavItem(label, href, order=...)``;
    items are sorted by ``order`` then label.
    """


@hookspec
def paved_entity_tabs() -> list[EntityTab] | None:
    """Contribute tabs to catalog entity pages (e.g. "Deployments" on a Model).

    Called once when the app is assembled. Return ``EntityTab(id, label, path, kinds=...)``:
    ``path`` is a URL template with ``{kind}``, ``{namespace}`` and ``{name}`` that returns
    an HTML fragment, loaded into the tab with htmx (and linked for readers without
    JavaScript). ``kinds`` limits the tab to entity kinds; empty means every kind.
    """


@hookspec
def paved_template_dirs() -> list[Path] | None:
    """Contribute folders of Jinja2 templates for this plugin's pages.

    Called once when the app is assembled. Return ``pathlib.Path`` folders; they are
    searched after the core's own, in plugin-name order, so templates can extend
    ``base.html``. Prefix your template names with your plugin's name to avoid clashes.
    """


@hookspec
def paved_policy_dirs() -> list[Path] | None:
    """Contribute folders of Rego policy: modules, ``*_test.rego`` tests and ``data.json``.

    Called once when the app (or ``paved policy``) is assembled. Return ``pathlib.Path``
    folders; their modules are loaded beside Paved's own ``policies/`` (after it, in
    plugin-name order) and their ``data.json`` is merged into ``data``. Use your own
    package (``package paved.<plugin>``) and add to ``data.paved.authz`` through rules the
    core's ``decision`` reads, e.g. ``denials contains msg if {...}`` in package
    ``paved.authz``. Tests run with ``paved policy test``.
    """


@hookspec
def paved_policy_context(
    action: str,
    user: dict[str, Any],
    resource: dict[str, Any] | None,
    engine: Engine,
    settings: Settings,
) -> dict[str, Any] | None:
    """Add facts to the policy input's ``context`` before an action is decided.

    Called on every gated request, so keep it fast (a dictionary lookup or one indexed
    query), and mark it with ``@facts_for(action, ...)`` when it concerns only some
    actions: it is then called for those alone. ``action`` is the action's name, ``user``
    and ``resource`` are the input document's (see ARCHITECTURE.md), ``engine`` the
    portal's database (``with Session(engine) as session:``) and ``settings`` its
    settings; take only the arguments you use. Return a dict merged into
    ``input.context`` (use keys of your own, e.g. ``{"pii_scans": {...}}``), or None when
    you have nothing to add. If it raises or returns something else, the request is denied
    with 503: a decision without the facts a policy expects could allow what it should not.
    """


@hookspec
def paved_task_handlers() -> list[TaskHandler] | None:
    """Contribute kinds of long work that tasks can run.

    Called once when the app or a worker is assembled. Return ``TaskHandler(kind, run,
    title=...)``; ``run(ctx)`` receives a ``TaskContext`` to read ``params``, write log
    lines, report progress and check for cancellation. ``kind`` is ``<plugin>.<verb>`` and
    must be unique.
    """


@hookspec
def paved_scaffolder_actions() -> list[StepAction] | None:
    """Contribute actions that software templates' steps can use (``action: train:submit``).

    Called once when the app or a worker is assembled. Return ``StepAction(id, description,
    run, input_schema, output_schema=...)`` from ``scaffolder.steps``; ``run(context,
    input)`` gets a ``StepContext`` (the run's workspace, its log, and ``context.acting(id)``
    to change things outside the workspace as the person who started the run) and the
    step's input, already checked against ``input_schema``; it returns the step's output.
    Ids are unique: an id already taken degrades the second plugin. Listed by
    ``GET /api/scaffolder/v2/actions``. Set ``supports_dry_run=False`` if it changes
    anything outside the workspace.
    """


@hookspec
def paved_readiness_checks() -> list[ReadinessCheck] | None:
    """Contribute checks that ``/readyz`` runs (e.g. "policy engine answers").

    Called once when the app is assembled. Return ``ReadinessCheck(name, check)`` objects;
    each is run on every ``/readyz`` request: ``check(app)`` returns None when ready and
    raises (with a message a person can act on) when not. Keep it under ~100 ms.
    """


@hookspec
def paved_cli_commands() -> list[click.Command] | None:
    """Contribute commands to the ``paved`` CLI.

    Called once when the CLI starts. Return ``click.Command`` objects (a Typer app becomes
    one through ``typer.main.get_command``); each becomes ``paved <name>``. A name the core
    already uses is refused and the plugin marked degraded.
    """


@hookspec
def paved_training_backends() -> list[TrainingBackend] | None:
    """Contribute places where training jobs run (``local``, ``kubernetes``, a Slurm queue...).

    Called when the app or a worker is assembled and when a job starts. Return
    ``TrainingBackend(name, description, run)`` from ``plugins.training.backends``:
    ``run(spec, ctx, settings)`` starts the job's entry point as ``spec`` describes it
    (repository, commit, command, environment with the MLflow run to log to, resources,
    timeout), forwards its output with ``ctx.log``, stops it when
    ``ctx.is_cancel_requested()`` (then raises ``TaskCancelled``), and returns a
    ``TrainingOutcome`` with its exit code and usage (CPU, GPU and memory, for
    chargeback). A project picks its backend in ``paved-project.yaml``; a name already taken
    degrades the second plugin.
    """


@hookspec
def paved_serving_runtimes(settings: Settings) -> list[ServingRuntime] | None:
    """Contribute places where deployed models run (``local``, ``kubernetes``, a vendor's).

    Called when the app or a worker is assembled and when a deployment changes. Return
    ``ServingRuntime(name, description, apply, remove, splits_traffic, restores)`` from
    ``plugins.serving.runtimes``: ``apply(state, settings, log)`` brings a deployment to
    ``state`` (its stable version, its canary and share, the previous version to keep warm)
    and returns ``{version: url}`` of the servers, or ``{"*": url}`` when the runtime splits
    the traffic itself (``splits_traffic``); it blocks until they answer, raises
    ``RuntimeFailed`` with a line a person can act on when they do not, and leaves what ran
    before running. ``remove(name, settings, log)`` stops a deployment. ``restores`` says
    its servers stop with the portal, which brings them back when it starts. A name already
    taken degrades the second plugin.
    """


@hookspec
def paved_cost_sources(settings: Settings) -> list[UsageSource] | None:
    """Contribute places usage comes from, for chargeback (training jobs, serving, storage,
    a cluster's cost allocation API).

    Called when the app or a worker is assembled, and by each collection of usage (a task,
    run every ``cost.collect_interval`` seconds and on demand). Return ``UsageSource(name,
    description, metrics, collect)`` from ``portal.usage``: ``collect(window)`` returns
    ``Usage(day, metric, quantity, team=..., project=..., model=...)`` for the window's
    days; the collection replaces what the source reported before for those days, in one
    transaction. Usage without a team goes to the owner of its project in the catalog.
    Every metric needs a price in ``cost.prices``: a source with an unpriced
    metric, or a name already taken, degrades its plugin.
    """


@hookspec
def paved_evidence_collectors(settings: Settings) -> list[EvidenceCollector] | None:
    """Contribute SOC 2 evidence: who has access, what changed in production and who
    approved it, how much data was scanned for PII.

    Called by each evidence export (a task) and each view of the evidence pages and API,
    so keep it cheap: build the collectors, do not collect.
    Return ``EvidenceCollector(name, title, description, controls, collect)`` from
    ``portal.evidence``: ``collect(period)`` reads the period's days and returns
    ``Evidence(columns, rows, summary, exceptions)``. ``controls`` names the SOC 2
    criteria the evidence shows (``("CC8.1",)``); an exception is a sentence an auditor
    should question, and marks those controls for attention. The export writes each
    collector's rows as JSON and CSV into the signed pack. A collector that raises fails
    its controls in that pack, not the export; a name already taken degrades the second
    plugin. Evidence is read by auditors: leave dataset values and secrets out.
    """


# -- Lifecycle ---------------------------------------------------------------------------


@hookspec
def paved_startup(app: FastAPI, settings: Settings) -> None:
    """Prepare what the plugin needs before the portal serves its first request.

    Called once per process when the app starts, before the task worker starts and
    before the first request. Keep it fast (the whole start-up budget is 2 s): defer slow
    work to a task. Returns None.
    """


@hookspec
def paved_shutdown(app: FastAPI) -> Awaitable[None] | None:
    """Release what ``paved_startup`` acquired (connections, processes, threads).

    Called once per process when the portal stops (Ctrl-C or SIGTERM), after the task
    worker has stopped, on the event loop. Returns None, or an awaitable (a coroutine) for
    what must be closed on the event loop, such as an async HTTP client's connections; the
    portal awaits it.
    """


@hookspec
def paved_demo_data(session: Session, settings: Settings) -> None:
    """Load this plugin's demo data into a fresh installation.

    Called once per database, by ``paved up --demo``, inside one transaction shared by all
    plugins: add rows (or enqueue tasks) through your services and do not commit. Returns
    None.
    """
