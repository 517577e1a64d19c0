"""The scaffolder's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from fastapi import APIRouter

from portal import Action, hookimpl
from scaffolder import api
from scaffolder.actions import SCAFFOLDER_ACTIONS


@hookimpl
def paved_actions() -> list[Action]:
    return SCAFFOLDER_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router]
