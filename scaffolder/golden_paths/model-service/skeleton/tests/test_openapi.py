"""The committed openapi.json, the API entity's definition in the catalog, is the service's."""

from __future__ import annotations

import json

from ${{ values.package }}.model import ServedModel
from ${{ values.package }}.openapi import OPENAPI
from ${{ values.package }}.service import build_app


def test_the_committed_openapi_document_is_the_services(champion: ServedModel) -> None:
    committed = json.loads(OPENAPI.read_text())

    assert committed == build_app(champion).openapi(), "openapi.json is out of date: make openapi"
    assert {"/v1/predict", "/invocations"} <= set(committed["paths"])
