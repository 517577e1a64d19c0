"""Write the service's OpenAPI document to openapi.json, the definition of the API entity in
catalog-info.yaml. Run it (``make openapi``) when the routes or the model's features change:
a test fails until the committed document matches the service."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastapi import FastAPI

from ${{ values.package }}.model import UnloadedModel
from ${{ values.package }}.service import create_app

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"


def document(app: FastAPI) -> str:
    """The app's OpenAPI document, as openapi.json holds it."""
    return json.dumps(app.openapi(), indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model-uri", help="the model whose features type the requests (default: as the service)"
    )
    parser.add_argument("--output", type=Path, default=OPENAPI)
    options = parser.parse_args()
    app = create_app(options.model_uri)
    if isinstance(app.state.model, UnloadedModel):
        # Without the model the document would have no features: better none than wrong.
        raise SystemExit(f"openapi.json not written: {app.state.model.reason}")
    options.output.write_text(document(app))
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
