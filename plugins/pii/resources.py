"""What PII actions are about, as the policy sees it: the dataset to scan (its owner and
classification), or an uploaded sample (the dataset it is a sample of, when named). A loader
keeps what it found on the request."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from plugins.pii import service
from plugins.pii.models import ScanIn
from portal import Resource
from portal.db import SessionDep
from portal.errors import InvalidInput

SAMPLE = Resource(ref="pii:sample", kind="Sample")


async def scan_asked(request: Request, session: SessionDep) -> Resource:
    """The dataset ``POST /api/pii/scans`` asks to scan."""
    try:
        asked = ScanIn.model_validate(await request.json())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    except ValueError:
        raise InvalidInput.for_field(
            "body", "not JSON", '{"dataset": "dataset:default/churn-train"}'
        ) from None
    entity = await run_in_threadpool(service.dataset_entity, session, asked.dataset)
    request.state.dataset = entity
    return service.dataset_resource(entity)


async def sample_uploaded(request: Request, session: SessionDep) -> Resource:
    """The sample ``POST /api/pii/samples`` uploads, and the dataset it is of, if named."""
    form = await request.form()
    named = form.get("dataset")
    request.state.dataset = None
    if isinstance(named, str) and named.strip():
        entity = await run_in_threadpool(service.dataset_entity, session, named.strip())
        request.state.dataset = entity
        return service.dataset_resource(entity)
    return SAMPLE


async def scan_from_form(request: Request, session: SessionDep) -> Resource:
    """The dataset the Scan button of a Dataset page asks to scan."""
    named = (await request.form()).get("dataset")
    if not isinstance(named, str) or not named.strip():
        raise InvalidInput.for_field("dataset", "missing", "a Dataset's entity ref")
    entity = await run_in_threadpool(service.dataset_entity, session, named.strip())
    request.state.dataset = entity
    return service.dataset_resource(entity)
