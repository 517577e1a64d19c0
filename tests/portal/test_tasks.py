"""Tasks: persisted, claimed by exactly one worker, resumed after a crash or a restart."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal import tasks
from portal.app import create_app
from portal.db import create_database_engine
from portal.models import Task, TaskStatus
from portal.plugins import Plugins
from portal.settings import Settings, TaskSettings
from portal.tasks import TaskHandler
from portal.worker import TaskContext, Worker

from conftest import BOTH_BACKENDS
from factories import make_task, reload_task, throwaway_plugin, wait_for
from processes import settings_env, start_paved


def echo(ctx: TaskContext) -> dict[str, Any]:
    ctx.log(f"echo {ctx.params}")
    return {"echoed": ctx.params}


def explode(ctx: TaskContext) -> None:
    ctx.log("about to fail")
    raise ValueError("the training data is empty")


ECHO = TaskHandler("test.echo", echo, title="Echo")
EXPLODE = TaskHandler("test.explode", explode, title="Explode")


def test_a_queued_task_runs_and_keeps_its_result_and_log(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "test.echo", model="churn")
    worker = Worker(engine, [ECHO], settings.tasks)
    assert worker.run_once() is True
    assert worker.run_once() is False  # nothing left
    done = reload_task(engine, task.id)  # type: ignore[arg-type]
    assert done.status == TaskStatus.SUCCEEDED
    assert done.result == {"echoed": {"model": "churn"}}
    assert done.attempts == 1
    assert done.worker_id == worker.worker_id
    assert done.started_at
    assert done.finished_at
    assert done.finished_at >= done.started_at
    assert [line.message for line in tasks.list_log_lines(session, task.id)] == [  # type: ignore[arg-type]
        "echo {'model': 'churn'}"
    ]


def test_a_failing_handler_fails_the_task_with_its_traceback_in_the_log(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "test.explode")
    Worker(engine, [EXPLODE], settings.tasks).run_once()
    failed = reload_task(engine, task.id)  # type: ignore[arg-type]
    assert failed.status == TaskStatus.FAILED
    assert failed.error == "ValueError: the training data is empty"
    lines = tasks.list_log_lines(session, task.id)  # type: ignore[arg-type]
    assert lines[0].message == "about to fail"
    assert lines[1].level == "error"
    assert "Traceback" in lines[1].message


def test_a_worker_leaves_kinds_it_cannot_run_to_workers_that_can(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "gone.plugin")
    assert Worker(engine, [ECHO], settings.tasks).run_once() is False
    assert reload_task(engine, task.id).status == TaskStatus.QUEUED  # type: ignore[arg-type]
    able = TaskHandler("gone.plugin", echo, title="Echo again")
    assert Worker(engine, [able], settings.tasks).run_once() is True
    assert reload_task(engine, task.id).status == TaskStatus.SUCCEEDED  # type: ignore[arg-type]


def test_the_task_page_says_when_no_worker_here_runs_its_kind(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        task = make_task(session, "gone.plugin")
    page = client.get(f"/tasks/{task.id}", headers={"Accept": "text/html"}).text
    assert "no worker in this portal runs <code>gone.plugin</code> tasks" in page


def test_enqueue_refuses_a_kind_without_a_plugin_prefix(session: Session) -> None:
    from portal.errors import InvalidInput

    with pytest.raises(InvalidInput) as raised:
        tasks.enqueue(session, "echo", title="x")
    assert raised.value.errors[0].field == "kind"
    assert raised.value.errors[0].expected == "<plugin>.<verb>"


def test_cancelling_a_queued_task_stops_it_before_it_runs(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "test.echo")
    tasks.request_cancel(session, task.id, by="user:default/alice")  # type: ignore[arg-type]
    session.commit()
    assert Worker(engine, [ECHO], settings.tasks).run_once() is False
    assert reload_task(engine, task.id).status == TaskStatus.CANCELLED  # type: ignore[arg-type]


def test_cancelling_a_running_task_stops_it_at_its_next_check(
    engine: Engine, session: Session, settings: Settings
) -> None:
    started = threading.Event()

    def long_training(ctx: TaskContext) -> None:
        started.set()
        while True:
            ctx.check_cancelled()
            time.sleep(0.01)

    task = make_task(session, "test.train")
    worker = Worker(
        engine, [TaskHandler("test.train", long_training, title="Train")], settings.tasks
    )
    runner = threading.Thread(target=worker.run_once, daemon=True)
    runner.start()
    assert started.wait(5)
    with Session(engine) as other:
        tasks.request_cancel(other, task.id, by="user:default/alice")  # type: ignore[arg-type]
        other.commit()
    runner.join(5)
    assert not runner.is_alive()
    assert reload_task(engine, task.id).status == TaskStatus.CANCELLED  # type: ignore[arg-type]
    messages = [line.message for line in tasks.list_log_lines(session, task.id)]  # type: ignore[arg-type]
    assert messages == [
        "cancel requested by user:default/alice; the task stops at its next check",
        "cancelled",
    ]


def test_cancelling_with_a_stale_view_of_a_task_just_claimed_asks_it_to_stop(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "test.echo")
    with Session(engine) as stale:
        assert tasks.get_task(stale, task.id).status == TaskStatus.QUEUED  # type: ignore[arg-type]
        Worker(engine, [ECHO], settings.tasks).claim()  # a worker claims it meanwhile
        cancelled = tasks.request_cancel(stale, task.id)  # type: ignore[arg-type]
        assert (cancelled.status, cancelled.cancel_requested) == (TaskStatus.RUNNING, True)
        stale.commit()


def test_a_cancel_request_on_a_task_handed_back_to_the_queue_cancels_it(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "test.echo")
    worker = Worker(engine, [ECHO], settings.tasks)
    assert worker.claim() is not None
    with Session(engine) as other:
        tasks.request_cancel(other, task.id)  # type: ignore[arg-type]
        other.commit()
    assert worker.release(task.id) is True  # type: ignore[arg-type]
    assert worker.run_once() is False  # not run again
    assert reload_task(engine, task.id).status == TaskStatus.CANCELLED  # type: ignore[arg-type]


def test_releasing_a_task_that_already_finished_leaves_it_finished(
    engine: Engine, session: Session, settings: Settings
) -> None:
    task = make_task(session, "test.echo")
    worker = Worker(engine, [ECHO], settings.tasks)
    worker.run_once()
    assert worker.release(task.id) is False  # type: ignore[arg-type]
    assert reload_task(engine, task.id).status == TaskStatus.SUCCEEDED  # type: ignore[arg-type]


def test_a_worker_that_lost_its_claim_stops_and_changes_nothing(
    engine: Engine, session: Session
) -> None:
    quick = TaskSettings(heartbeat_timeout=1, heartbeat_interval=0.05)
    observed: list[bool] = []

    def patient(ctx: TaskContext) -> dict[str, str]:
        with Session(engine) as other:  # another worker takes the task over
            other.execute(update(Task).where(Task.id == ctx.task_id).values(worker_id="other"))
            other.commit()
        wait_for(ctx.is_cancel_requested, timeout=5)
        observed.append(True)
        return {"written": "by the worker that lost it"}

    task = make_task(session, "test.patient")
    Worker(engine, [TaskHandler("test.patient", patient, title="Patient")], quick).run_once()
    after = reload_task(engine, task.id)  # type: ignore[arg-type]
    assert observed == [True]
    assert (after.status, after.worker_id, after.result) == (TaskStatus.RUNNING, "other", None)


def test_cancelling_a_finished_task_is_a_conflict(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        task = make_task(session, "test.echo")
    Worker(engine, [ECHO], settings.tasks).run_once()
    response = client.post(f"/api/tasks/{task.id}/cancel")
    assert response.status_code == 409
    assert response.json()["detail"] == f"task {task.id} has already succeeded"


def _run_workers_concurrently(settings: Settings, count: int, workers: int) -> Counter[int]:
    """Start ``workers`` workers at once, each with its own engine, on ``count`` tasks."""
    runs: Counter[int] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def record(ctx: TaskContext) -> None:
        with lock:
            runs[ctx.task_id] += 1

    handler = TaskHandler("test.record", record, title="Record")
    engine = create_database_engine(settings)
    with Session(engine) as session:
        for number in range(count):
            tasks.enqueue(session, "test.record", title=f"#{number}")
        session.commit()

    def work() -> None:
        own_engine = create_database_engine(settings)
        worker = Worker(own_engine, [handler], settings.tasks)
        barrier.wait()
        while worker.run_once():
            pass
        own_engine.dispose()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with Session(engine) as session:
        statuses = Counter(task.status for task in tasks.list_tasks(session, limit=count))
    engine.dispose()
    assert statuses == {TaskStatus.SUCCEEDED: count}
    return runs


@BOTH_BACKENDS
def test_two_workers_never_run_one_task_twice(
    backend: str, engine: Engine, settings: Settings
) -> None:
    runs = _run_workers_concurrently(settings, count=120, workers=4)
    assert len(runs) == 120
    assert set(runs.values()) == {1}


@pytest.mark.slow
@BOTH_BACKENDS
def test_two_worker_processes_never_run_one_task_twice(
    backend: str,
    engine: Engine,
    settings: Settings,
    installed_plugins: Callable[..., dict[str, str]],
) -> None:
    env = installed_plugins("lineage")
    with Session(engine) as session:
        ids = [
            tasks.enqueue(session, "lineage.count", title=f"#{n}", params={"model": n}).id
            for n in range(40)
        ]
        session.commit()
    environment = {**settings_env(settings), **env}
    workers = [start_paved("worker", "--drain", env=environment) for _ in range(2)]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    ran = [
        int(line.split(": ")[1].split()[0])
        for _, err in outputs
        for line in err.splitlines()
        if "queue drained" in line
    ]
    assert sum(ran) == 40
    with Session(engine) as session:
        finished = [tasks.get_task(session, task_id) for task_id in ids]  # type: ignore[arg-type]
        assert {task.status for task in finished} == {TaskStatus.SUCCEEDED}
        assert {task.attempts for task in finished} == {1}
        logs = [len(tasks.list_log_lines(session, task_id)) for task_id in ids]  # type: ignore[arg-type]
    assert set(logs) == {1}


def test_a_task_whose_worker_died_is_claimed_again(engine: Engine, session: Session) -> None:
    quick = TaskSettings(heartbeat_timeout=0.3, heartbeat_interval=0.1)
    task = make_task(session, "test.echo", n=1)
    dead = Worker(engine, [ECHO], quick, worker_id="dead-worker")
    assert dead.claim() is not None  # claimed, then the process "dies": no heartbeat
    alive = Worker(engine, [ECHO], quick, worker_id="alive-worker")
    assert alive.run_once() is False  # not orphaned yet
    time.sleep(0.4)
    assert alive.run_once() is True
    resumed = reload_task(engine, task.id)  # type: ignore[arg-type]
    assert resumed.status == TaskStatus.SUCCEEDED
    assert (resumed.attempts, resumed.worker_id) == (2, "alive-worker")
    messages = [line.message for line in tasks.list_log_lines(session, task.id)]  # type: ignore[arg-type]
    assert messages[0] == "resumed by alive-worker (attempt 2)"


def test_a_running_task_keeps_its_claim_while_it_heartbeats(
    engine: Engine, session: Session
) -> None:
    quick = TaskSettings(heartbeat_timeout=0.3, heartbeat_interval=0.05)
    slow_done = threading.Event()

    def slow(ctx: TaskContext) -> None:
        slow_done.wait(5)

    task = make_task(session, "test.slow")
    first = Worker(engine, [TaskHandler("test.slow", slow, title="Slow")], quick)
    runner = threading.Thread(target=first.run_once)
    runner.start()
    wait_for(lambda: reload_task(engine, task.id).status == TaskStatus.RUNNING)  # type: ignore[arg-type]
    time.sleep(0.6)  # twice the timeout: only heartbeats keep it claimed
    assert Worker(engine, [], quick).claim() is None
    slow_done.set()
    runner.join(5)
    assert reload_task(engine, task.id).attempts == 1  # type: ignore[arg-type]


def test_an_orphan_that_used_all_its_attempts_is_failed(engine: Engine, session: Session) -> None:
    quick = TaskSettings(heartbeat_timeout=0.1, heartbeat_interval=0.05, max_attempts=2)
    task = make_task(session, "test.echo")
    for name in ("first", "second"):
        assert Worker(engine, [ECHO], quick, worker_id=name).claim() is not None
        time.sleep(0.15)
    assert Worker(engine, [ECHO], quick).run_once() is False
    failed = reload_task(engine, task.id)  # type: ignore[arg-type]
    assert failed.status == TaskStatus.FAILED
    assert failed.error == "its worker stopped answering on each of 2 attempts"


def test_a_task_survives_a_restart_of_the_portal(
    working_settings: Settings, engine: Engine, admin_headers: dict[str, str]
) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def train(ctx: TaskContext) -> dict[str, int]:
        runs.append(ctx.attempt)
        started.set()
        while not release.is_set():
            ctx.check_cancelled()  # the portal stopping interrupts it here
            time.sleep(0.01)
        ctx.log("trained")
        return {"epochs": 3}

    plugins = Plugins.discover()
    handler = TaskHandler("test.train", train, title="Train")
    with throwaway_plugin(plugins, "trainer", paved_task_handlers=lambda: [handler]):
        with Session(engine) as session:
            task = make_task(session, "test.train")
        with TestClient(
            create_app(working_settings, plugins=plugins), headers=admin_headers
        ) as first_portal:
            assert started.wait(5)
            assert first_portal.get(f"/api/tasks/{task.id}").json()["status"] == "running"
        # The portal stopped mid-task: the task is back in the queue, not lost.
        assert reload_task(engine, task.id).status == TaskStatus.QUEUED  # type: ignore[arg-type]
        release.set()
        with TestClient(
            create_app(working_settings, plugins=plugins), headers=admin_headers
        ) as second_portal:
            wait_for(
                lambda: second_portal.get(f"/api/tasks/{task.id}").json()["status"] == "succeeded"
            )
            finished = second_portal.get(f"/api/tasks/{task.id}").json()
    assert runs == [1, 2]
    assert finished["result"] == {"epochs": 3}
    assert finished["attempts"] == 2


def test_a_queued_task_is_run_by_the_next_portal_that_starts(
    settings: Settings, working_settings: Settings, engine: Engine, admin_headers: dict[str, str]
) -> None:
    plugins = Plugins.discover()
    with TestClient(
        create_app(settings, plugins=plugins), headers=admin_headers
    ) as portal_without_worker:
        with Session(engine) as session:
            task = make_task(session, "portal.selfcheck")
        assert portal_without_worker.get(f"/api/tasks/{task.id}").json()["status"] == "queued"
    with TestClient(create_app(working_settings, plugins=plugins), headers=admin_headers) as portal:
        wait_for(lambda: portal.get(f"/api/tasks/{task.id}").json()["status"] == "succeeded")
        log = portal.get(f"/api/tasks/{task.id}/log").json()
    assert [line["message"].split(":")[0] for line in log] == [
        "database round trip",
        "schema at the newest revision",
        "front-end libraries built",
    ]


def _events(body: str) -> list[tuple[str, str | None, Any]]:
    events = []
    for block in body.strip().split("\r\n\r\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], fields.get("id"), json.loads(fields["data"])))
    return events


def test_following_a_task_streams_its_log_and_progress_then_its_status(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    def steps(ctx: TaskContext) -> None:
        for step in range(3):
            ctx.log(f"step {step}")
            ctx.progress(step + 1, 3)

    with Session(engine) as session:
        task = make_task(session, "test.steps")
    Worker(engine, [TaskHandler("test.steps", steps, title="Steps")], settings.tasks).run_once()
    events = _events(client.get(f"/api/tasks/{task.id}/events").text)
    assert [(kind, data.get("message")) for kind, _, data in events if kind == "log"] == [
        ("log", "step 0"),
        ("log", "step 1"),
        ("log", "step 2"),
    ]
    assert ("progress", None, {"done": 3, "total": 3}) in events
    assert events[-1][0] == "status"
    assert events[-1][2]["status"] == "succeeded"
    # A reconnecting client gets only what it missed.
    second_id = [event_id for kind, event_id, _ in events if kind == "log"][1]
    resumed = _events(
        client.get(f"/api/tasks/{task.id}/events", headers={"Last-Event-ID": second_id}).text
    )
    assert [data["message"] for kind, _, data in resumed if kind == "log"] == ["step 2"]


def test_following_a_missing_task_is_404(client: TestClient) -> None:
    assert client.get("/api/tasks/404/events").status_code == 404


def test_tasks_api_lists_newest_first_and_filters_by_status(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        first = make_task(session, "test.echo", n=1).id
        second = make_task(session, "test.echo", n=2).id
        session.execute(update(Task).where(Task.id == first).values(status="failed"))
        session.commit()
    assert [t["id"] for t in client.get("/api/tasks").json()] == [second, first]
    assert [t["id"] for t in client.get("/api/tasks?status=failed").json()] == [first]
    assert client.get("/api/tasks?status=lost").json()["errors"][0]["field"] == "query.status"
