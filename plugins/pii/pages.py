"""The PII pages: the PII tab of Dataset pages (the latest scan's masked findings per
column, a scan in progress followed live, the Scan button and a sample upload form)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import HTMLResponse, RedirectResponse

from catalog.pages import entity_url
from plugins.pii import actions, service
from plugins.pii.resources import sample_uploaded, scan_from_form
from portal import Identity, requires
from portal.auth.sessions import safe_next
from portal.db import SessionDep
from portal.shell import Shell

router = APIRouter(include_in_schema=False)
TAB = "pii"


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _tab_of(dataset: str) -> str:
    return f"{entity_url(dataset)}?tab={TAB}"


@router.get("/pii/tabs/{kind}/{namespace}/{name}", dependencies=[requires(actions.SCAN_READ)])
def dataset_tab(
    kind: str, namespace: str, name: str, request: Request, session: SessionDep
) -> HTMLResponse:
    """The PII tab: the latest completed scan, and the one in progress or failed since."""
    state = service.tab_state(session, f"{kind}:{namespace}/{name}")
    context: dict[str, Any] = {
        **vars(state),
        "tab_url": request.url.path,
        "back": _tab_of(state.dataset),
    }
    return _shell(request).render(request, "pii/tab.html", context)


@router.post("/pii/scans")
def scan_from_page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.SCAN_RUN, resource=scan_from_form)],
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The Scan button: a task scans; the tab follows it."""
    scan = service.start_scan(
        session, request.state.dataset, by=user, settings=request.app.state.settings
    )
    return RedirectResponse(safe_next(back) if back else _tab_of(scan.dataset or ""), 303)


@router.post("/pii/samples")
async def sample_from_page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.SCAN_RUN, resource=sample_uploaded)],
    file: Annotated[UploadFile, File()],
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The upload form: the sample is scanned by a task, then deleted."""
    settings = request.app.state.settings
    content = await file.read(settings.pii.max_upload_bytes + 1)
    scan = service.start_upload_scan(
        session,
        file.filename or "",
        content,
        entity=request.state.dataset,
        by=user,
        settings=settings,
    )
    target = safe_next(back) if back else f"/tasks/{scan.task_id}"
    return RedirectResponse(target, 303)
