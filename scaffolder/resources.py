"""What the scaffolder's routes ask the policy about, loaded for the gate
(``requires(action, resource=...)``): the run someone asks of a template, through the API
or its form, and a run someone wants to stop or retry.

A run asked is loaded once per request: the route that runs it depends on the same loader
as its resource (FastAPI keeps a dependency's result for the request), declared after the
gate, so who asks is decided on before the template is looked up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from catalog.refs import EntityRef
from portal.db import SessionDep
from portal.errors import InvalidInput
from portal.gate import Resource
from scaffolder import forms, service, templates
from scaffolder.models import ScaffoldIn


async def run_asked_by_api(request: Request, session: SessionDep) -> service.RunRequest:
    """The template ``POST /v2/tasks`` asks to run, with the values sent (the body is read
    here rather than declared, so that who asks is known before it is checked)."""
    try:
        body = ScaffoldIn.model_validate(await request.json())
    except (ValueError, ValidationError):
        raise InvalidInput.for_field(
            "body", "not a run request", '{"templateRef": ..., "values": {...}}'
        ) from None
    ref = service.parse_template_ref(body.template_ref)
    template = await run_in_threadpool(templates.get_template_entity, session, ref)
    return service.RunRequest(template, body.values)


async def run_asked_by_form(
    namespace: str, name: str, request: Request, session: SessionDep
) -> service.RunRequest:
    """The template a form runs, with the values filled in."""
    ref = EntityRef("template", namespace, name)
    template = await run_in_threadpool(templates.get_template_entity, session, ref)
    values = forms.read_values(template.body, forms.read_posted(await request.form()))
    return service.RunRequest(template, values)


RunAskedByApi = Annotated[service.RunRequest, Depends(run_asked_by_api)]
RunAskedByForm = Annotated[service.RunRequest, Depends(run_asked_by_form)]


async def template_to_run(asked: RunAskedByApi) -> Resource:
    return service.describe_run(asked)


async def template_from_form(asked: RunAskedByForm) -> Resource:
    return service.describe_run(asked)


def task_of(task_id: str, session: SessionDep) -> Resource:
    """A run, as the policy sees it: who started it."""
    view = service.get_run(session, service.parse_task_id(task_id))
    return Resource(
        ref=f"scaffolder-task:{view.task.id}",
        kind="ScaffolderTask",
        facts={"created_by": view.task.created_by, "template": view.run.template_ref},
    )
