"""Refreshing the catalog: a persisted task per refresh, queued on an interval."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from catalog import refresh, service
from catalog.refs import parse_ref
from portal.models import Task, TaskLog, TaskStatus
from portal.settings import Settings
from portal.worker import Worker

from factories import wait_for

COMPONENT = (
    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: scorer\n"
    "  description: {description}\nspec:\n  type: service\n  lifecycle: production\n"
    "  owner: fraud\n"
)


def test_the_refresh_task_reads_every_location_again_and_logs_what_changed(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": [tmp_path]})}
    )
    file = tmp_path / "catalog-info.yaml"
    file.write_text(COMPONENT.format(description="first"))
    with Session(engine) as session:
        service.add_location(session, "file", str(file), by="t", settings=settings.catalog)
        session.commit()
    file.write_text(COMPONENT.format(description="second"))
    with Session(engine) as session:
        queued = refresh.queue_refresh(session, by="user:default/alice")
        assert refresh.queue_refresh(session, by="user:default/bob") is None  # one at a time
        session.commit()
        assert queued is not None
        task_id = queued.id

    worker = Worker(engine, [refresh.HANDLER], settings.tasks, portal_settings=settings)
    assert worker.run_once()

    with Session(engine) as session:
        task = session.get(Task, task_id)
        assert task is not None
        assert task.status == TaskStatus.SUCCEEDED
        assert task.result == {
            "locations": 1,
            "added": 0,
            "updated": 1,
            "orphaned": 0,
            "problems": 0,
        }
        lines = session.exec(select(TaskLog).where(col(TaskLog.task_id) == task_id)).all()
        assert [line.message for line in lines] == [
            f"file:{file}: 0 added, 1 updated, 1 unchanged, 0 orphaned, 0 problems"
        ]
        entity = service.get_entity(session, parse_ref("component:scorer"))
        assert entity.body["metadata"]["description"] == "second"


def test_the_scheduler_queues_a_refresh_every_interval(engine: Engine) -> None:
    scheduler = refresh.RefreshScheduler(engine, interval=0.05)
    scheduler.start()
    try:

        def queued() -> bool:
            with Session(engine) as session:
                return (
                    session.exec(select(Task).where(col(Task.kind) == refresh.KIND)).first()
                    is not None
                )

        wait_for(queued, timeout=5)
    finally:
        scheduler.stop()
    with Session(engine) as session:
        # The first is still waiting for a worker, so no second one was queued.
        assert len(session.exec(select(Task).where(col(Task.kind) == refresh.KIND)).all()) == 1


def test_a_running_portal_refreshes_its_catalog_on_the_interval(
    working_settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from portal.app import create_app
    from portal.plugins import Plugins

    settings = working_settings.model_copy(
        update={
            "catalog": working_settings.catalog.model_copy(
                update={"file_roots": [tmp_path], "refresh_interval": 0.1}
            )
        }
    )
    file = tmp_path / "catalog-info.yaml"
    file.write_text(COMPONENT.format(description="first"))
    with Session(engine) as session:
        service.add_location(session, "file", str(file), by="t", settings=settings.catalog)
        session.commit()
    file.write_text(COMPONENT.format(description="changed on disk"))

    def described() -> str:
        with Session(engine) as session:
            entity = service.get_entity(session, parse_ref("component:scorer"))
            return str(entity.body["metadata"]["description"])

    with TestClient(create_app(settings, plugins=Plugins.discover(), engine=engine)):
        wait_for(lambda: described() == "changed on disk", timeout=10)
    with Session(engine) as session:
        done = session.exec(
            select(Task).where(
                col(Task.kind) == refresh.KIND, col(Task.status) == TaskStatus.SUCCEEDED
            )
        ).all()
    assert done
