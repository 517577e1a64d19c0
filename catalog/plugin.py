"""The catalog's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from catalog import api, service
from catalog.actions import CATALOG_ACTIONS
from portal import Action, Settings, hookimpl


@hookimpl
def paved_actions() -> list[Action]:
    return CATALOG_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router]


@hookimpl
def paved_demo_data(session: Session, settings: Settings) -> None:
    service.register_demo(session, settings.catalog)
