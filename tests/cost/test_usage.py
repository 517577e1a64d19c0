"""Collecting usage: sources contributed through ``paved_cost_sources``, read by a task that
replaces each source's figures of the days it read, attributed to teams."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.cost import service
from plugins.cost.models import UsageRow
from portal.db import utcnow
from portal.errors import ConfigurationError
from portal.plugins import Plugins
from portal.settings import Settings, load_settings
from portal.usage import Usage, UsageSource

from conftest import FRAUD, SEARCH
from cost.conftest import Collect, Meter
from factories import reload_task, throwaway_plugin

NOV_2 = date(2026, 11, 2)
NOV_3 = date(2026, 11, 3)


def usage_rows(engine: Engine, source: str = "meter") -> list[tuple[date, str, str, str, float]]:
    with Session(engine) as session:
        rows = session.scalars(select(UsageRow).where(UsageRow.source == source))
        return sorted((r.day, r.team, r.project, r.metric, r.quantity) for r in rows)


def test_a_plugin_adds_a_usage_source_and_a_taken_name_degrades_its_plugin(
    app: FastAPI, plugins: Plugins, settings: Settings, teams: list[str], meter: Meter,
    collect: Collect, engine: Engine,
) -> None:  # fmt: skip
    meter.usage = [
        Usage(NOV_2, "gpu_hours", 3.0, team=SEARCH),
        Usage(NOV_2, "gpu_hours", 1.5, project="component:default/fraud-pipeline", model="fraud"),
        Usage(NOV_2, "gpu_hours", 0.5, project="component:default/fraud-pipeline", model="fraud"),
        Usage(NOV_3, "cpu_hours", 2.0, project="component:default/nobody-knows"),
    ]
    impostor = UsageSource("meter", "Another meter", {"gpu_hours": "GPU-hours"}, lambda w: [])
    with throwaway_plugin(plugins, "zz_impostor", paved_cost_sources=lambda: [impostor]):
        sources = service.available_sources(plugins, settings)
        assert sources["meter"] is meter.source
        assert plugins.records["zz_impostor"].status == "degraded"
        task_id = collect(NOV_2, NOV_3)
    assert reload_task(engine, task_id).status == "succeeded"
    assert meter.windows[0].start == NOV_2
    assert meter.windows[0].end == NOV_3
    # Summed per day, team, project, model and metric; a project's owner from the catalog;
    # usage nobody owns kept, unattributed.
    assert usage_rows(engine) == [
        (NOV_2, FRAUD, "component:default/fraud-pipeline", "gpu_hours", 2.0),
        (NOV_2, SEARCH, "", "gpu_hours", 3.0),
        (NOV_3, "", "component:default/nobody-knows", "cpu_hours", 2.0),
    ]


def test_a_collection_replaces_a_sources_figures_of_the_days_it_read_only(
    teams: list[str], meter: Meter, collect: Collect, engine: Engine
) -> None:
    meter.usage = [
        Usage(NOV_2, "gpu_hours", 1.0, team=FRAUD),
        Usage(NOV_3, "gpu_hours", 1.0, team=FRAUD),
    ]
    collect(NOV_2, NOV_3)
    meter.usage = [Usage(NOV_3, "gpu_hours", 4.0, team=FRAUD)]
    collect(NOV_3, NOV_3)
    assert [(day, quantity) for day, *_, quantity in usage_rows(engine)] == [
        (NOV_2, 1.0),
        (NOV_3, 4.0),
    ]


def test_a_failing_source_keeps_its_figures_and_the_task_says_which_failed(
    client: TestClient, teams: list[str], meter: Meter, collect: Collect, engine: Engine
) -> None:
    meter.usage = [Usage(NOV_2, "gpu_hours", 1.0, team=FRAUD)]
    collect(NOV_2, NOV_2)
    meter.fails = "the meter's API answered 502"
    task = reload_task(engine, collect(NOV_2, NOV_2))
    assert task.status == "failed"
    assert "usage sources failed: meter" in (task.error or "")
    assert usage_rows(engine) == [(NOV_2, FRAUD, "", "gpu_hours", 1.0)]
    sources = {found["name"]: found for found in client.get("/api/cost/sources").json()}
    assert sources["meter"]["error"] == "the meter's API answered 502"
    assert sources["meter"]["collected_through"] == "2026-11-02"


def test_a_source_reporting_bad_figures_is_refused_whole(
    teams: list[str], meter: Meter, collect: Collect, engine: Engine
) -> None:
    meter.usage = [
        Usage(NOV_2, "gpu_hours", 1.0, team=FRAUD),
        Usage(NOV_2, "cpu_hours", -3.0, team=FRAUD),
    ]
    task = reload_task(engine, collect(NOV_2, NOV_2))
    assert task.status == "failed"
    with Session(engine) as session:
        state = service.source_states(session)["meter"]
    assert state.error == "reported cpu_hours = -3.0 on 2026-11-02; expected 0 or more"
    assert usage_rows(engine) == []


def test_a_source_with_a_metric_the_price_sheet_lacks_degrades_its_plugin(
    plugins: Plugins, settings: Settings
) -> None:
    tpu = Meter("tpu", {"tpu_hours": "TPU-hours"})
    with throwaway_plugin(plugins, "tpu", paved_cost_sources=lambda: [tpu.source]):
        assert "tpu" not in service.available_sources(plugins, settings)
        record = plugins.records["tpu"]
        assert record.status == "degraded"
        assert "set cost.prices.tpu_hours" in " ".join(record.problems)
        priced = load_settings(cost={"prices": {"tpu_hours": 4.2}})
        assert "tpu" in service.available_sources(plugins, priced)


def test_a_price_sheet_with_a_negative_or_missing_price_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError) as negative:
        load_settings(cost={"prices": {"gpu_hours": -2}})
    assert "cost.prices.gpu_hours" in str(negative.value)
    assert "greater than or equal to 0" in str(negative.value)
    with pytest.raises(ConfigurationError) as missing:
        load_settings(cost={"prices": {"gpu_hours": None}})
    assert "no price for gpu_hours" in str(missing.value)
    assert load_settings(cost={"prices": {"gpu_hours": 3}}).cost.prices["cpu_hours"] == 0.04


def test_collections_are_asked_by_admins_and_a_range_is_checked(
    client: TestClient, alice: TestClient, teams: list[str]
) -> None:
    asked = client.post("/api/cost/collections", json={"from": "2026-11-02", "to": "2026-11-03"})
    assert asked.status_code == 202, asked.text
    assert asked.json()["kind"] == "cost.collect"
    backwards = client.post(
        "/api/cost/collections", json={"from": "2026-11-03", "to": "2026-11-01"}
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "to"
    assert "before from" in backwards.json()["errors"][0]["message"]
    assert (
        alice.post(
            "/api/cost/collections", json={"from": "2026-11-02", "to": "2026-11-03"}
        ).status_code
        == 403
    )


def test_the_schedule_queues_one_collection_at_a_time(
    app: FastAPI, engine: Engine, settings: Settings
) -> None:
    schedule = service.Schedule(engine, settings)
    first = schedule.enqueue_due()
    today = utcnow().date()
    assert first is not None  # the last collect_days (2) days, today included
    assert first.params == {"from": str(today - timedelta(days=1)), "to": str(today)}
    assert schedule.enqueue_due() is None  # the first is still queued
