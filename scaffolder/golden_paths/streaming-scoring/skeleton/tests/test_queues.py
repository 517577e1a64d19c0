"""The local queue delivers each event at least once: in order, hidden while a receiver holds
it, delivered again if it is not acknowledged in time, to processes sharing its file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ${{ values.package }}.queues import LocalQueue

SRC = Path(__file__).resolve().parents[1] / "src"


def test_events_are_received_oldest_first_and_acknowledged_ones_are_gone(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "queue.db", "events")
    queue.publish(["a", "b", "c"])

    first = queue.receive(2)
    queue.ack([delivery.id for delivery in first])

    assert [delivery.body for delivery in first] == ["a", "b"]
    assert [delivery.attempts for delivery in first] == [1, 1]
    assert queue.peek() == ["c"]
    assert len(queue) == 1


def test_an_unacknowledged_event_is_delivered_again_after_its_visibility_timeout(
    tmp_path: Path,
) -> None:
    queue = LocalQueue(tmp_path / "queue.db", "events", visibility_timeout=0.3)
    queue.publish(["a"])

    [held] = queue.receive(10)
    assert queue.receive(10) == []  # hidden while its receiver holds it
    time.sleep(0.35)
    [again] = queue.receive(10)

    assert (again.id, again.body, again.attempts) == (held.id, "a", 2)
    queue.ack([again.id])
    assert len(queue) == 0


def test_queues_sharing_a_file_keep_their_events_apart(tmp_path: Path) -> None:
    events = LocalQueue(tmp_path / "queue.db", "events")
    scores = LocalQueue(tmp_path / "queue.db", "scores")
    events.publish(["event"])
    scores.publish(["score"])

    assert [delivery.body for delivery in scores.receive(10)] == ["score"]
    assert events.peek() == ["event"]


def test_a_receive_waits_for_an_event_published_meanwhile(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "queue.db", "events")
    threading.Timer(0.1, queue.publish, args=(["late"],)).start()

    started = time.monotonic()
    deliveries = queue.receive(10, wait_seconds=5.0)

    assert [delivery.body for delivery in deliveries] == ["late"]
    assert time.monotonic() - started < 2.0


def test_receivers_in_parallel_never_get_the_same_event(tmp_path: Path) -> None:
    LocalQueue(tmp_path / "queue.db", "events").publish([str(n) for n in range(200)])
    received: list[list[str]] = [[], [], [], []]

    def drain(into: list[str]) -> None:
        queue = LocalQueue(tmp_path / "queue.db", "events")
        while deliveries := queue.receive(7):
            into.extend(delivery.body for delivery in deliveries)
            queue.ack([delivery.id for delivery in deliveries])

    threads = [threading.Thread(target=drain, args=(into,)) for into in received]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    everything = [body for into in received for body in into]
    assert sorted(everything, key=int) == [str(n) for n in range(200)]


def test_events_pushed_by_another_process_are_received(tmp_path: Path) -> None:
    lines = tmp_path / "events.jsonl"
    lines.write_text('{"id": 1}\n\n{"id": 2}\n')
    command = ["push", "events", str(lines), "--db", str(tmp_path / "queue.db")]
    pushed = subprocess.run(
        [sys.executable, "-m", "${{ values.package }}.queues", *command],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )

    assert "pushed 2 events" in pushed.stdout
    queue = LocalQueue(tmp_path / "queue.db", "events")
    assert [delivery.body for delivery in queue.receive(10)] == ['{"id": 1}', '{"id": 2}']
