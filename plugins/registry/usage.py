"""The registry's usage for chargeback: the artifact storage of every registered model
version, in GB-months (a day's share of its month), for the team owning its Model entity."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import mlflow.artifacts
from sqlmodel import Session

from plugins.registry import service
from portal.tracking import tracking_client
from portal.usage import Usage, UsageSource, UsageWindow

GB = 1e9


def _size(uri: str) -> int:
    """Bytes of every file under an artifact URI."""
    total = 0
    for found in mlflow.artifacts.list_artifacts(artifact_uri=uri):
        if found.is_dir:
            total += _size(f"{uri.rstrip('/')}/{found.path.rsplit('/', 1)[-1]}")
        else:
            total += int(found.file_size or 0)
    return total


def _usage(window: UsageWindow) -> Iterator[Usage]:
    client = tracking_client(window.settings)
    versions: list[Any] = service.every_version(client)
    names = sorted({version.name for version in versions})
    with Session(window.engine) as session:
        entities = service.model_entities(session, names)
    for version in versions:
        created = datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).date()
        if created > window.end:
            continue
        size = _size(client.get_model_version_download_uri(version.name, version.version))
        entity = entities.get(version.name)
        owner = entity.body.get("spec", {}).get("owner") if entity else None
        for day in window.days():
            if day >= created and size:
                days_in_month = calendar.monthrange(day.year, day.month)[1]
                yield Usage(
                    day=day,
                    metric="storage_gb_months",
                    quantity=size / GB / days_in_month,
                    team=owner or None,
                    model=version.name,
                )


SOURCE = UsageSource(
    name="storage",
    description="Registered model versions' artifacts, in the registry's artifact store",
    metrics={"storage_gb_months": "storage GB-months"},
    collect=lambda window: list(_usage(window)),
)
