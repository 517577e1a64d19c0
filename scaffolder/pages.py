"""The scaffolder's pages: the templates to create from, each template's form (checked field
by field as it is filled), and a run's page with its steps and log followed live.

Every page works without JavaScript (a form posts, a run's page reloads); with htmx the
form is checked as it changes, and a run's page follows its events as they happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from catalog import actions as catalog_actions
from catalog import service as catalog
from catalog.pages import entity_url
from catalog.refs import EntityRef, parse_ref, ref_of
from portal import FieldProblem, Identity, InvalidInput, requires
from portal.db import SessionDep
from portal.gate import Authority
from portal.models import TaskStatus
from portal.settings import Settings
from portal.shell import Shell
from scaffolder import actions, forms, runner, service, templates
from scaffolder.execution import actions_of
from scaffolder.resources import RunAskedByForm, task_of, template_from_form
from scaffolder.steps.publish import LOCAL_HOST

router = APIRouter(include_in_schema=False)


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _offer_choices(
    request: Request,
    session: Session,
    identity: Identity,
    ref: EntityRef,
    template: Mapping[str, Any],
) -> forms.Choices:
    """What the form's pickers offer ``identity``: the owners the policy lets them create
    for, and the hosts repositories may be published to."""
    state = request.app.state
    authority = Authority(state.policy, state.plugins, state.engine, state.settings)
    groups = service.list_owner_choices(session, ref, template, by=identity, authority=authority)
    hosts = [LOCAL_HOST, *sorted(_settings(request).scaffolder.git_remotes)]
    return forms.Choices(groups, hosts)


def _template_ref(namespace: str, name: str) -> EntityRef:
    return EntityRef("template", namespace, name)


def _build_form_context(
    request: Request,
    session: Session,
    identity: Identity,
    ref: EntityRef,
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    problems: list[FieldProblem],
) -> dict[str, Any]:
    metadata = template.get("metadata") or {}
    choices = _offer_choices(request, session, identity, ref, template)
    return {
        "ref": ref,
        "template": template,
        "title": templates.title_of(template),
        "description": metadata.get("description") or "",
        "steps": forms.build(template, values, problems, choices),
        "action_url": f"/create/templates/{ref.namespace}/{ref.name}",
        "problems": problems,
    }


@router.get("/create", dependencies=[requires(actions.TEMPLATE_READ)])
def templates_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Every template in the catalog, to create a project from."""
    found = []
    for row in catalog.entities_of_kind(session, "template"):
        metadata = row.body.get("metadata") or {}
        spec = row.body.get("spec") or {}
        ref = ref_of(row.body)
        found.append(
            {
                "url": f"/create/templates/{ref.namespace}/{ref.name}",
                "title": templates.title_of(row.body),
                "description": metadata.get("description") or "",
                "type": spec.get("type") or "",
                "tags": metadata.get("tags") or [],
                "owner": spec.get("owner") or "",
            }
        )
    runs = service.list_runs(session, limit=10).runs
    return _shell(request).render(
        request, "scaffolder/templates.html", {"templates": found, "runs": runs}
    )


@router.get("/create/templates/{namespace}/{name}")
def form_page(
    namespace: str,
    name: str,
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(actions.TEMPLATE_READ)],
) -> HTMLResponse:
    """A template's form, with its defaults."""
    ref = _template_ref(namespace, name)
    template = templates.get_template(session, ref)
    context = _build_form_context(request, session, identity, ref, template, {}, [])
    return _shell(request).render(request, "scaffolder/form.html", context)


@router.get("/create/entities")
def entity_choices(
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(catalog_actions.ENTITY_READ)],
    filter: Annotated[list[str] | None, Query(description="The picker's catalog filters.")] = None,
    owned: bool = False,
    field: str = "q",
) -> HTMLResponse:
    """An entity picker's choices for what is typed in it so far (htmx sends the field's
    own value, under the field's name: ``field`` says which)."""
    found = catalog.search_entities(
        session,
        filter or [],
        request.query_params.get(field, ""),
        owned_by=[identity.ref, *identity.groups] if owned else (),
    )
    choices = [(str(ref_of(row.body)), templates.title_of(row.body)) for row in found]
    return _shell(request).render(request, "scaffolder/_entity_choices.html", {"choices": choices})


@router.post("/create/templates/{namespace}/{name}/check")
async def check_form(
    namespace: str,
    name: str,
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(actions.TEMPLATE_READ)],
) -> HTMLResponse:
    """The form again, as filled so far, with the problems of the fields filled in (htmx
    swaps it on every change; a field left empty is only said missing when sent)."""
    ref = _template_ref(namespace, name)
    posted = forms.read_posted(await request.form())
    template = templates.get_template(session, ref)
    values = forms.read_values(template, posted)
    touched = {key.split(".")[0] for key, given in posted.items() if any(given)}
    problems = [
        p for p in runner.check_values(template, values) if p.field.split(".")[0] in touched
    ]
    context = _build_form_context(request, session, identity, ref, template, values, problems)
    return _shell(request).render(
        request, "scaffolder/form.html", context, fragment="scaffolder/_form.html"
    )


@router.post("/create/templates/{namespace}/{name}")
async def run_form(
    namespace: str,
    name: str,
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(actions.TEMPLATE_RUN, resource=template_from_form)],
    # After the gate, which loaded it for the policy: the template is read once.
    asked: RunAskedByForm,
) -> Response:
    """Run the template with the form's values and go to the run's page; a form that does
    not fit comes back with each problem beside its field."""
    template, values = asked.template.body, asked.values
    # Checked as the run will check them: with the form's defaults filled in.
    problems = runner.check_values(template, runner.fill_defaults(template, values))
    if problems:
        ref = _template_ref(namespace, name)
        context = _build_form_context(request, session, identity, ref, template, values, problems)
        return _shell(request).render(request, "scaffolder/form.html", context, status_code=422)
    view = service.start_run(
        session,
        asked,
        by=identity,
        settings=_settings(request),
        known_actions=actions_of(request.app.state.plugins).keys(),
    )
    return RedirectResponse(f"/create/tasks/{view.task.id}", status_code=303)


def _build_run_context(session: Session, task_id: int) -> dict[str, Any]:
    view = service.get_run(session, task_id)
    steps = []
    for index, step in enumerate(view.run.spec.get("steps") or []):
        step_id = runner.step_id_of(step, index)
        kept = view.run.steps.get(step_id) or {}
        steps.append(
            {
                "id": step_id,
                "name": step.get("name") or step_id,
                "action": step.get("action"),
                "status": kept.get("status") or "open",
            }
        )
    info = view.run.spec.get("templateInfo") or {}
    return {
        "view": view,
        "task": view.task,
        "status": view.status,
        "is_finished": TaskStatus(view.task.status).is_finished,
        "title": templates.title_of(info.get("entity") or {}) or view.run.template_ref,
        "template_url": entity_url(parse_ref(view.run.template_ref)),
        "steps": steps,
        "lines": service.list_events(session, task_id),
        "links": _show_links((view.run.output or {}).get("links") or []),
        "texts": (view.run.output or {}).get("text") or [],
    }


def _show_links(links: list[Any]) -> list[dict[str, str]]:
    """The run's output links: a web URL as it is, an entity ref as its catalog page, a
    local repository (file://) as the command that clones it. Anything else (a
    ``javascript:`` URL from a value someone typed, a ref that does not parse) is shown as
    text, never as a link."""
    shown = []
    for link in links:
        if not isinstance(link, Mapping):
            continue
        title = str(link.get("title") or link.get("url") or link.get("entityRef") or "")
        url = str(link.get("url") or "")
        if link.get("entityRef"):
            try:
                shown.append({"title": title, "url": entity_url(parse_ref(str(link["entityRef"])))})
            except InvalidInput:
                shown.append({"title": title, "text": str(link["entityRef"])})
        elif url.startswith("file://"):
            shown.append({"title": title, "clone": f"git clone {url}"})
        elif urlsplit(url).scheme in ("http", "https"):
            shown.append({"title": title, "url": url})
        elif url:
            shown.append({"title": title, "text": url})
    return shown


@router.get("/create/tasks/{task_id}", dependencies=[requires(actions.TASK_READ)])
def run_page(task_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    """A run: its steps, its log (followed live while it runs) and, at the end, its links."""
    context = _build_run_context(session, service.parse_task_id(task_id))
    return _shell(request).render(request, "scaffolder/run.html", context)


@router.get("/create/tasks/{task_id}/summary", dependencies=[requires(actions.TASK_READ)])
def run_summary(task_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    """A run's status and output links, swapped into its page when it ends."""
    context = _build_run_context(session, service.parse_task_id(task_id))
    return _shell(request).render(request, "scaffolder/_run_summary.html", context)


@router.post("/create/tasks/{task_id}/cancel")
def cancel_from_page(
    task_id: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.TASK_CANCEL, resource=task_of)],
) -> RedirectResponse:
    """The cancel button of a run's page."""
    number = service.parse_task_id(task_id)
    service.cancel_run(session, number, by=user, settings=_settings(request))
    return RedirectResponse(f"/create/tasks/{number}", status_code=303)


@router.post("/create/tasks/{task_id}/retry")
def retry_from_page(
    task_id: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.TASK_RETRY, resource=task_of)],
) -> RedirectResponse:
    """The retry button of a failed run's page: it starts again at the failed step."""
    number = service.parse_task_id(task_id)
    service.retry_run(session, number, sent_secrets=None, by=user, settings=_settings(request))
    return RedirectResponse(f"/create/tasks/{number}", status_code=303)
