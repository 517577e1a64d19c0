"""The catalog REST API under ``/api/catalog``, with the routes and shapes of Backstage's
catalog backend, so ``@backstage/catalog-client`` and existing scripts work unchanged."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from catalog.api import entities, locations
from portal.problems import use_backstage_statuses

router = APIRouter(
    prefix="/api/catalog", tags=["catalog"], dependencies=[Depends(use_backstage_statuses)]
)
router.include_router(entities.router)
router.include_router(locations.router)

__all__ = ["router"]
