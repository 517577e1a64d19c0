"""A plugin with a route that declares no action: the portal must refuse it."""

from fastapi import APIRouter

from portal import hookimpl

router = APIRouter()


@router.get("/api/ungated/secrets")
def secrets() -> dict[str, str]:
    return {"secret": "nobody should see this"}


@hookimpl
def paved_routes():  # type: ignore[no-untyped-def]
    return [router]
