"""The shapes and parameters the catalog API's routes share, in Backstage's names."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from portal.settings import Settings

JSON_TYPE = "application/json"
FilterParam = Annotated[
    list[str],
    Query(
        description="Conditions `key=value` (or a bare `key`), comma-separated (ANDed); "
        "repeat the parameter to OR them."
    ),
]
FieldsParam = Annotated[
    list[str], Query(description="Dotted fields to return, e.g. `kind,metadata.name`.")
]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class Compact(BaseModel):
    """A shape whose missing (None) fields are left out, as Backstage's schemas want."""

    @model_serializer(mode="wrap")
    def _without_missing(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class PageInfo(Compact):
    """Cursors to the pages around this one."""

    nextCursor: str | None = None  # noqa: N815 (Backstage's field names)
    prevCursor: str | None = None  # noqa: N815


class EntitiesPage(BaseModel):
    items: list[dict[str, Any]]
    totalItems: int  # noqa: N815
    pageInfo: PageInfo  # noqa: N815
