"""The router core: the traffic split, the metrics window, the canary's judgement, and
forwarding to a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from fastapi import FastAPI, Request, Response

from plugins.serving.router import (
    Forwarded,
    Forwarder,
    Metrics,
    Route,
    VersionMetrics,
    choose_version,
    judge_canary,
    nearest_rank,
)

from processes import free_port, serve_in_thread

STABLE = "http://127.0.0.1:8101"
Result = TypeVar("Result")


def run_on_own_loop(work: Coroutine[object, object, Result]) -> Result:
    """Run ``work`` on a new event loop in a thread of its own: the browser tests' Playwright
    keeps an event loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


CANARY = "http://127.0.0.1:8102"


def canary_route(percent: float = 10, **thresholds: float) -> Route:
    return Route(
        deployment="churn-production",
        stable_version="3",
        stable_url=STABLE,
        canary_version="4",
        canary_url=CANARY,
        canary_percent=percent,
        **thresholds,
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# The split ---------------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90])
def test_canary_gets_its_percent_of_requests(percent: int) -> None:
    draws = random.Random(percent)
    route = canary_route(percent)

    chosen = [choose_version(route, draws.random())[0] for _ in range(10_000)]

    assert chosen.count("4") / len(chosen) == pytest.approx(percent / 100, abs=0.015)


def test_a_canary_at_zero_percent_gets_nothing_and_at_hundred_everything() -> None:
    edges = [0.0, 0.5, 0.999999]

    assert {choose_version(canary_route(0), draw) for draw in edges} == {("3", STABLE)}
    assert {choose_version(canary_route(100), draw) for draw in edges} == {("4", CANARY)}


def test_the_same_draw_chooses_the_same_version() -> None:
    route = canary_route(30)

    assert choose_version(route, 0.2999) == ("4", CANARY)
    assert choose_version(route, 0.3) == ("3", STABLE)
    assert choose_version(route, 0.2999) == ("4", CANARY)


def test_without_a_canary_every_request_goes_to_stable() -> None:
    route = Route(deployment="churn-production", stable_version="3", stable_url=STABLE)

    assert {choose_version(route) for _ in range(100)} == {("3", STABLE)}
    assert route.versions == {"3": STABLE}


@pytest.mark.parametrize(
    "fields",
    [
        {"canary_percent": 101, "canary_version": "4", "canary_url": CANARY},
        {"canary_percent": -1},
        {"canary_version": "4"},
        {"max_error_rate": 2.0},
    ],
)
def test_a_route_that_makes_no_sense_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"expected|both"):
        Route(deployment="churn-production", stable_version="3", stable_url=STABLE, **fields)  # type: ignore[arg-type]


# Metrics -----------------------------------------------------------------------------------


def test_the_window_forgets_requests_older_than_it() -> None:
    clock = Clock()
    metrics = VersionMetrics(60, clock=clock)
    metrics.record(100, is_error=True)
    clock.now += 30
    metrics.record(10, is_error=False)
    metrics.record(20, is_error=False)

    assert metrics.summary()["requests"] == 3
    clock.now += 31  # the first request is 61 s old
    summary = metrics.summary()

    assert (summary["requests"], summary["errors"], summary["error_rate"]) == (2, 0, 0.0)
    assert summary["p99_ms"] == 20
    assert (metrics.total_requests, metrics.total_errors) == (3, 1)
    clock.now += 60
    assert metrics.summary()["requests"] == 0


def test_percentiles_are_nearest_rank() -> None:
    clock = Clock()
    metrics = VersionMetrics(60, clock=clock)
    for latency in random.Random(3).sample(range(1, 201), 200):  # 1..200 ms, shuffled
        metrics.record(latency, is_error=False)

    summary = metrics.summary()

    assert (summary["p50_ms"], summary["p99_ms"]) == (100, 198)
    assert nearest_rank([5.0], 99) == 5.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 99) == 10.0
    assert nearest_rank([], 50) is None


def test_a_version_without_requests_has_no_percentiles() -> None:
    summary = VersionMetrics(60).summary()

    assert summary == {
        "requests": 0,
        "errors": 0,
        "error_rate": 0.0,
        "p50_ms": None,
        "p99_ms": None,
        "throughput_rps": 0.0,
    }


def test_throughput_counts_over_the_window_or_since_counting_began() -> None:
    clock = Clock()
    metrics = VersionMetrics(60, clock=clock)
    clock.now += 10
    for _ in range(50):
        metrics.record(5, is_error=False)

    assert metrics.summary()["throughput_rps"] == pytest.approx(5.0)  # 50 in 10 s
    clock.now += 50
    assert metrics.summary()["throughput_rps"] == pytest.approx(50 / 60)


def test_metrics_are_kept_per_deployment_and_version_and_reset() -> None:
    clock = Clock()
    metrics = Metrics(60, clock=clock)
    metrics.for_version("churn-production", "3").record(10, is_error=False)
    metrics.for_version("churn-production", "4").record(30, is_error=True)
    metrics.for_version("fraud-production", "1").record(10, is_error=False)

    snapshot = metrics.snapshot("churn-production")

    assert sorted(snapshot) == ["3", "4"]
    assert (snapshot["4"]["errors"], snapshot["4"]["p50_ms"]) == (1, 30)
    metrics.reset("churn-production", "4")
    assert metrics.snapshot("churn-production")["4"]["requests"] == 0
    assert metrics.for_version("churn-production", "4").total_requests == 0
    metrics.forget("churn-production")
    assert metrics.snapshot("churn-production") == {}
    assert list(metrics.snapshot("fraud-production")) == ["1"]


# Judging a canary --------------------------------------------------------------------------


def record(metrics: Metrics, version: str, latencies: list[float], errors: int = 0) -> None:
    for position, latency in enumerate(latencies):
        metrics.for_version("churn-production", version).record(latency, position < errors)


def test_a_canary_above_the_error_rate_is_judged_with_its_numbers() -> None:
    metrics = Metrics(60)
    record(metrics, "4", [10.0] * 40, errors=14)

    reason = judge_canary(canary_route(max_error_rate=0.02), metrics, min_requests=20)

    assert reason == "canary v4 error rate 35.0% over 40 requests is above the 2.0% allowed"


def test_a_canary_above_the_p99_is_judged_with_its_numbers() -> None:
    metrics = Metrics(60)
    record(metrics, "4", [100.0] * 49 + [412.0])

    reason = judge_canary(canary_route(max_p99_ms=250), metrics, min_requests=20)

    assert reason == "canary v4 p99 412 ms is above the 250 ms allowed"


def test_a_canary_breaking_both_thresholds_is_told_both() -> None:
    metrics = Metrics(60)
    record(metrics, "4", [300.0] * 20, errors=20)

    reason = judge_canary(
        canary_route(max_error_rate=0.05, max_p99_ms=250), metrics, min_requests=20
    )

    assert reason == (
        "canary v4 error rate 100.0% over 20 requests is above the 5.0% allowed; "
        "canary v4 p99 300 ms is above the 250 ms allowed"
    )


def test_a_rate_just_above_the_threshold_shows_enough_decimals() -> None:
    metrics = Metrics(60)
    record(metrics, "4", [10.0] * 10_000, errors=204)  # 2.04 %, 2 % allowed

    reason = judge_canary(canary_route(max_error_rate=0.02), metrics, min_requests=20)

    assert reason == "canary v4 error rate 2.04% over 10000 requests is above the 2.00% allowed"


def test_a_canary_with_too_few_requests_is_not_judged() -> None:
    metrics = Metrics(60)
    record(metrics, "4", [900.0] * 19, errors=19)
    route = canary_route(max_error_rate=0.02, max_p99_ms=250)

    assert judge_canary(route, metrics, min_requests=20) is None
    record(metrics, "4", [900.0], errors=1)
    assert judge_canary(route, metrics, min_requests=20) is not None


def test_a_healthy_canary_and_a_route_without_one_are_not_judged() -> None:
    metrics = Metrics(60)
    record(metrics, "4", [100.0] * 50, errors=1)
    record(metrics, "3", [900.0] * 50, errors=50)  # the stable version is not the canary
    stable_only = Route(
        deployment="churn-production", stable_version="3", stable_url=STABLE, max_error_rate=0
    )

    assert (
        judge_canary(canary_route(max_error_rate=0.05, max_p99_ms=250), metrics, min_requests=20)
        is None
    )
    assert judge_canary(canary_route(), metrics, min_requests=20) is None  # no thresholds
    assert judge_canary(stable_only, metrics, min_requests=20) is None


def test_requests_that_left_the_window_do_not_judge_a_canary() -> None:
    clock = Clock()
    metrics = Metrics(60, clock=clock)
    record(metrics, "4", [10.0] * 30, errors=30)
    clock.now += 61

    assert judge_canary(canary_route(max_error_rate=0.02), metrics, min_requests=20) is None


# Forwarding --------------------------------------------------------------------------------


def model_server_double() -> FastAPI:
    """Answers ``/invocations`` with the status its JSON body asks for (200 by default),
    echoing the body and its content type."""
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        body = await request.body()
        asked = json.loads(body)
        await asyncio.sleep(asked.get("sleep", 0))
        status = asked.get("status", 200)
        content_type = request.headers.get("content-type", "")
        answer = json.dumps({"echo": body.decode(), "content_type": content_type})
        return Response(answer, status_code=status, media_type="application/json")

    return app


def forward_all(
    url: str, statuses: list[int], metrics: Metrics, *, sleep: float = 0, timeout: float = 30
) -> list[Forwarded]:
    """Forward one request to version 4 at ``url`` for each status the answer should have;
    the model server waits ``sleep`` seconds before each answer."""

    async def run() -> list[Forwarded]:
        async with Forwarder(metrics, timeout=timeout) as forwarder:
            return [
                await forwarder.forward_to(
                    "churn-production",
                    "4",
                    url,
                    json.dumps({"status": status, "sleep": sleep}).encode(),
                    "application/json",
                )
                for status in statuses
            ]

    return run_on_own_loop(run())


def test_forwarding_passes_the_answer_and_records_its_latency() -> None:
    metrics = Metrics(60)
    with serve_in_thread(model_server_double()) as url:
        (answer,) = forward_all(url, [200], metrics)

    assert (answer.version, answer.status) == ("4", 200)
    assert answer.headers == {"content-type": "application/json"}
    assert json.loads(answer.body) == {
        "echo": '{"status": 200, "sleep": 0}',
        "content_type": "application/json",
    }
    summary = metrics.snapshot("churn-production")["4"]
    assert (summary["requests"], summary["errors"]) == (1, 0)
    assert summary["p50_ms"] == pytest.approx(answer.latency_ms)


def test_a_server_error_counts_against_the_version_and_a_bad_request_does_not() -> None:
    metrics = Metrics(60)
    with serve_in_thread(model_server_double()) as url:
        answers = forward_all(url, [500, 400, 422, 503, 200], metrics)

    assert [answer.status for answer in answers] == [500, 400, 422, 503, 200]
    summary = metrics.snapshot("churn-production")["4"]
    assert (summary["requests"], summary["errors"]) == (5, 2)


def test_a_server_that_is_down_answers_503_and_counts_as_an_error() -> None:
    metrics = Metrics(60)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    (answer,) = forward_all(url, [200], metrics)

    assert answer.status == 503
    assert answer.headers == {"content-type": "application/problem+json"}
    problem = json.loads(answer.body)
    assert problem["status"] == 503
    assert problem["detail"] == f"the model server of churn-production v4 at {url} is down"
    assert metrics.snapshot("churn-production")["4"]["errors"] == 1


def test_a_server_that_does_not_answer_in_time_answers_504() -> None:
    metrics = Metrics(60)
    with serve_in_thread(model_server_double()) as url:
        answers = forward_all(url, [200, 200], metrics, sleep=0.5, timeout=0.2)

    assert [answer.status for answer in answers] == [504, 504]
    problem = json.loads(answers[0].body)
    assert problem["detail"] == "the model server of churn-production v4 did not answer in time"
    assert all(answer.latency_ms < 450 for answer in answers)  # it did not wait for the answer
    assert metrics.snapshot("churn-production")["4"]["errors"] == 2


def test_a_server_that_hangs_up_answers_502() -> None:
    metrics = Metrics(60)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.close()  # the request was read; no answer comes

        with ThreadPoolExecutor(max_workers=1) as pool:
            hung_up = pool.submit(hang_up)
            (answer,) = forward_all(url, [200], metrics)
            hung_up.result(timeout=5)

    assert answer.status == 502
    assert json.loads(answer.body)["detail"].startswith(
        "the model server of churn-production v4 broke off: "
    )
    assert metrics.snapshot("churn-production")["4"]["errors"] == 1


def test_forwarding_a_route_sends_to_the_chosen_version() -> None:
    metrics = Metrics(60)

    async def run(stable: str, canary: str) -> list[str]:
        route = Route(
            deployment="churn-production",
            stable_version="3",
            stable_url=stable,
            canary_version="4",
            canary_url=canary,
            canary_percent=50,
        )
        async with Forwarder(metrics) as forwarder:
            answers = [
                await forwarder.forward(route, b"{}", "application/json", draw=draw)
                for draw in (0.1, 0.9, 0.2)
            ]
        return [answer.version for answer in answers]

    with (
        serve_in_thread(model_server_double()) as stable,
        serve_in_thread(model_server_double()) as canary,
    ):
        versions = run_on_own_loop(run(stable, canary))

    assert versions == ["4", "3", "4"]
    snapshot = metrics.snapshot("churn-production")
    assert (snapshot["3"]["requests"], snapshot["4"]["requests"]) == (1, 2)
