"""Events come out scored, malformed ones go to the dead-letter queue with the reason while the
others flow, an event is acknowledged only once its result is out, and the service stops
cleanly."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Tracking

from ${{ values.package }}.consumer import Consumer, main
from ${{ values.package }}.model import ScoringModel
from ${{ values.package }}.queues import Delivery, LocalQueue


@dataclass(frozen=True)
class Queues:
    events: LocalQueue
    scores: LocalQueue
    dead_letters: LocalQueue


@pytest.fixture
def queues(tmp_path: Path) -> Queues:
    path = tmp_path / "queue.db"
    return Queues(
        LocalQueue(path, "events", visibility_timeout=0.3),
        LocalQueue(path, "scores"),
        LocalQueue(path, "dead-letters"),
    )


def event(event_id: str, **features: Any) -> str:
    """A well-formed event; ``features`` replace the defaults (None leaves one out)."""
    given = {"amount": 120.5, "account_age_days": 30, "items": 2, "night_time": 1} | features
    return json.dumps(
        {"id": event_id, "features": {k: v for k, v in given.items() if v is not None}}
    )


def records(queue: LocalQueue) -> list[dict[str, Any]]:
    return [json.loads(body) for body in queue.peek()]


def consumer(model: ScoringModel, queues: Queues, **options: Any) -> Consumer:
    options.setdefault("wait_seconds", 0.05)
    return Consumer(model, queues.events, queues.scores, queues.dead_letters, **options)


def test_events_come_out_scored_on_the_output_queue(model: ScoringModel, queues: Queues) -> None:
    queues.events.publish([event("t-1"), event("t-2", amount=3.0, night_time=0), event("t-3")])

    assert consumer(model, queues).process_batch() == 3

    results = records(queues.scores)
    assert [result["id"] for result in results] == ["t-1", "t-2", "t-3"]
    assert {result["prediction"] for result in results} <= {0, 1}
    assert {result["model_version"] for result in results} == {model.version}
    assert {result["model_run_id"] for result in results} == {model.run_id}
    assert len(queues.events) == 0
    assert len(queues.dead_letters) == 0


def test_a_model_call_scores_at_most_batch_size_events(model: ScoringModel, queues: Queues) -> None:
    queues.events.publish([event(f"t-{n}") for n in range(7)])
    batches = consumer(model, queues, batch_size=3)

    assert [batches.process_batch() for _ in range(4)] == [3, 3, 1, 0]
    assert [result["id"] for result in records(queues.scores)] == [f"t-{n}" for n in range(7)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ('["t-9"]', "not a JSON object but a list"),
        (json.dumps({"features": {}}), "'id' is None"),
        (json.dumps({"id": "t-9"}), "no 'features' object"),
        (event("t-9", amount=None), "missing feature 'amount'"),
        (event("t-9", amount="lots"), "feature 'amount' is 'lots': expected a number"),
        (event("t-9", items=2.5), "feature 'items' is 2.5: expected a whole number"),
    ],
)
def test_a_malformed_event_is_dead_lettered_with_its_reason_while_the_others_flow(
    model: ScoringModel, queues: Queues, body: str, reason: str
) -> None:
    queues.events.publish([event("t-1"), body, event("t-2")])

    consumer(model, queues).process_batch()

    assert [result["id"] for result in records(queues.scores)] == ["t-1", "t-2"]
    [dead] = records(queues.dead_letters)
    assert reason in dead["reason"]
    assert dead["event"] == body
    assert len(queues.events) == 0


class OutputDown:
    """An output queue whose broker is unreachable: a stand-in, since the point is what
    happens to the input when publishing fails, which a real queue will not do on demand."""

    def publish(self, bodies: Sequence[str]) -> None:
        raise ConnectionError("the output queue is unreachable")

    def receive(self, limit: int, *, wait_seconds: float = 0.0) -> list[Delivery]:
        return []

    def ack(self, ids: Sequence[str]) -> None:
        raise AssertionError("nothing was received from it")


def test_an_event_whose_processing_crashed_before_its_ack_is_delivered_again(
    model: ScoringModel, queues: Queues
) -> None:
    queues.events.publish([event("t-1")])
    crashing = Consumer(model, queues.events, OutputDown(), queues.dead_letters)

    with pytest.raises(ConnectionError):
        crashing.process_batch()
    assert queues.events.receive(10) == []  # still held by the crashed consumer
    time.sleep(0.35)  # past the visibility timeout
    consumer(model, queues).process_batch()

    assert [result["id"] for result in records(queues.scores)] == ["t-1"]
    assert len(queues.events) == 0


def test_an_event_whose_scoring_keeps_failing_is_dead_lettered_after_max_attempts(
    model: ScoringModel, tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    queues = Queues(
        LocalQueue(path, "events", visibility_timeout=0.0),  # redelivered at once
        LocalQueue(path, "scores"),
        LocalQueue(path, "dead-letters"),
    )
    queues.events.publish([event("t-1")])
    crashing = Consumer(model, queues.events, OutputDown(), queues.dead_letters, max_attempts=2)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            crashing.process_batch()

    consumer(model, queues, max_attempts=2).process_batch()

    [dead] = records(queues.dead_letters)
    assert dead["reason"] == "not acknowledged after 2 deliveries"
    assert dead["attempts"] == 3
    assert len(queues.events) == 0


def test_the_consumer_finishes_its_batch_and_stops_when_asked(
    model: ScoringModel, queues: Queues
) -> None:
    queues.events.publish([event(f"t-{n}") for n in range(10)])
    stop = threading.Event()
    running = consumer(model, queues, batch_size=4)
    thread = threading.Thread(target=running.run, args=(stop,))
    thread.start()
    wait_until(lambda: len(queues.scores) == 10)

    stop.set()
    thread.join(timeout=2.0)

    assert not thread.is_alive()
    assert running.tally.scored == 10
    assert len(queues.events) == 0  # nothing left in flight


def test_the_service_scores_until_sigterm_then_exits(
    tracking: Tracking,
    model: ScoringModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    path = tmp_path / "queue.db"
    LocalQueue(path, "events").publish([event("t-1"), event("t-2"), "{not json"])
    scores = LocalQueue(path, "scores")

    def terminate_once_scored() -> None:
        wait_until(lambda: len(scores) == 2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_once_scored, daemon=True).start()
    main(["--queue-db", str(path), "--wait-seconds", "0.05"])

    assert [json.loads(body)["id"] for body in scores.peek()] == ["t-1", "t-2"]
    assert len(LocalQueue(path, "dead-letters")) == 1
    assert len(LocalQueue(path, "events")) == 0


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
