"""The service: take events from the input queue, score them with an MLflow model, publish
each result to the output queue, and each event that cannot be scored to the dead-letter
queue with the reason. It stops, after finishing the batch in hand, on SIGTERM or Ctrl-C.

The model is ``--model-uri``, else ``$MODEL_URI``, else the registered model's champion
(``models:/${{ values.name }}@champion``), looked up once at start; MLflow is
``$MLFLOW_TRACKING_URI`` (default: ./mlflow.db).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow

from ${{ values.package }}.events import Event, MalformedEvent, parse_event
from ${{ values.package }}.model import DEFAULT_URI, ScoringModel, load_model
from ${{ values.package }}.queues import Delivery, LocalQueue, Queue

BATCH_SIZE = ${{ values.batchSize }}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
log = logging.getLogger(__name__)


@dataclass
class Tally:
    """What a consumer has done since it started."""

    scored: int = 0
    dead_lettered: int = 0


class Consumer:
    """Moves events from ``source`` to ``results``, scored, or to ``dead_letters``.

    At least once: an event is acknowledged only after its result (or dead letter) is
    published, so an event whose processing crashed is delivered again, and its result may
    be published twice; readers keep one result per ``id``. An event delivered more than
    ``max_attempts`` times, whose scoring keeps failing, is dead-lettered rather than
    retried for ever.
    """

    def __init__(
        self,
        model: ScoringModel,
        source: Queue,
        results: Queue,
        dead_letters: Queue,
        *,
        batch_size: int = BATCH_SIZE,
        wait_seconds: float = 1.0,
        max_attempts: int = 5,
    ) -> None:
        self.model = model
        self.source = source
        self.results = results
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds  # how long a receive waits: a stop waits as long
        self.max_attempts = max_attempts
        self.tally = Tally()

    def run(self, stop: threading.Event) -> Tally:
        """Process batches until ``stop`` is set; the batch in hand is finished first.

        A batch that fails (the model, the output queue) raises: its events are left
        unacknowledged, and are delivered again once their visibility timeout is over.
        """
        while not stop.is_set():
            self.process_batch()
        return self.tally

    def process_batch(self) -> int:
        """Receive up to ``batch_size`` events, score them in one model call, publish, then
        acknowledge; returns how many events were received."""
        deliveries = self.source.receive(self.batch_size, wait_seconds=self.wait_seconds)
        scorable: list[tuple[Delivery, Event]] = []
        refused: list[tuple[Delivery, str]] = []
        for delivery in deliveries:
            if delivery.attempts > self.max_attempts:
                reason = f"not acknowledged after {self.max_attempts} deliveries"
                refused.append((delivery, reason))
                continue
            try:
                event = parse_event(delivery.body, self.model.features, self.model.required)
            except MalformedEvent as error:
                refused.append((delivery, str(error)))
            else:
                scorable.append((delivery, event))
        if refused:
            self.dead_letter(refused)
        if scorable:
            self.score(scorable)
        return len(deliveries)

    def score(self, scorable: list[tuple[Delivery, Event]]) -> None:
        """Score the events in one model call, publish the results, then acknowledge."""
        predictions = self.model.predict([event.features for _, event in scorable])
        scored_at = now()
        self.results.publish(
            [
                json.dumps(
                    {
                        "id": event.id,
                        "prediction": prediction,
                        "model_uri": self.model.uri,
                        "model_version": self.model.version,
                        "model_run_id": self.model.run_id,
                        "scored_at": scored_at,
                    }
                )
                for (_, event), prediction in zip(scorable, predictions, strict=True)
            ]
        )
        self.source.ack([delivery.id for delivery, _ in scorable])
        self.tally.scored += len(scorable)

    def dead_letter(self, refused: list[tuple[Delivery, str]]) -> None:
        """Publish the refused events with their reasons, then acknowledge them."""
        for delivery, reason in refused:
            log.warning("dead-lettering delivery %s: %s", delivery.id, reason)
        failed_at = now()
        self.dead_letters.publish(
            [
                json.dumps(
                    {
                        "reason": reason,
                        "event": delivery.body,
                        "attempts": delivery.attempts,
                        "failed_at": failed_at,
                    }
                )
                for delivery, reason in refused
            ]
        )
        self.source.ack([delivery.id for delivery, _ in refused])
        self.tally.dead_lettered += len(refused)


def now() -> str:
    """The time, as results and dead letters record it: ISO 8601, UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-uri", help=f"the model to score with (default: $MODEL_URI, else {DEFAULT_URI})"
    )
    parser.add_argument(
        "--queue-db",
        type=Path,
        default=Path(os.environ.get("QUEUE_DB", "queue.db")),
        help="the local queues' file (default: $QUEUE_DB, else queue.db)",
    )
    parser.add_argument("--input", default="events", help="the queue of events to score")
    parser.add_argument("--output", default="scores", help="the queue results go to")
    parser.add_argument("--dead-letter", default="dead-letters", help="the queue refusals go to")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="events per model call")
    parser.add_argument(
        "--wait-seconds", type=float, default=1.0, help="how long a receive waits for events"
    )
    parser.add_argument(
        "--visibility-timeout",
        type=float,
        default=30.0,
        help="seconds before an unacknowledged event is delivered again",
    )
    parser.add_argument(
        "--max-attempts", type=int, default=5, help="deliveries before an event is dead-lettered"
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
    model = load_model(options.model_uri or os.environ.get("MODEL_URI") or DEFAULT_URI)

    def local(name: str) -> LocalQueue:
        return LocalQueue(options.queue_db, name, visibility_timeout=options.visibility_timeout)

    consumer = Consumer(
        model,
        local(options.input),
        local(options.output),
        local(options.dead_letter),
        batch_size=options.batch_size,
        wait_seconds=options.wait_seconds,
        max_attempts=options.max_attempts,
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    version = f" version {model.version}" if model.version else ""
    log.info("scoring %s with %s%s", options.input, model.uri, version)
    try:
        tally = consumer.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped: %d scored, %d dead-lettered", tally.scored, tally.dead_lettered)


if __name__ == "__main__":
    main()
