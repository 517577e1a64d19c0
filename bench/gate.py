"""What the policy gate costs: throughput of one read route, gated and ungated, in one run.

The portal is served by uvicorn in its own process (SQLite, in-process Rego). The bench adds
one router with the same handler twice (read a task by id): once behind
``requires(portal.task.read)`` and once marked ungated. Both go through everything else
the portal does for a request (request id, metrics, access log, session middleware, one
database session). Rounds alternate between the two so drift hits both alike.

The gated route is called with an API token and with a signed session cookie, each beside
an ungated twin sending the same request; the order of the callers flips every round.
Target: the gate costs at most 15% of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/catalog.py would hide
# the catalog package the portal loads.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import httpx

from portal.db import SessionDep
from portal.models import TaskOut
from portal.testing import wait_until_ready

TARGET_OVERHEAD = 0.15


def serve(port: int, data_dir: str) -> None:
    """The server process: the real portal plus the bench's two routes."""
    import uvicorn
    from fastapi import APIRouter

    from portal import actions, tasks
    from portal.app import create_app
    from portal.gate import requires, ungated
    from portal.settings import load_settings

    settings = load_settings(data_dir=data_dir, log_level="warning", port=port)
    app = create_app(settings)
    router = APIRouter()

    def read_task(task_id: int, session: SessionDep) -> TaskOut:
        return TaskOut.model_validate(tasks.get_task(session, task_id))

    router.get("/bench/gated/{task_id}", dependencies=[requires(actions.TASK_READ)])(read_task)
    router.get("/bench/ungated/{task_id}")(ungated(read_task))
    app.include_router(router)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def prepare(data_dir: str) -> tuple[int, str]:
    """A migrated database with one task and an admin token; returns (task id, token)."""
    from sqlmodel import Session

    from portal import schema, tasks
    from portal.auth.tokens import issue_token
    from portal.db import create_database_engine
    from portal.settings import load_settings

    engine = create_database_engine(load_settings(data_dir=data_dir))
    schema.upgrade(engine)
    with Session(engine) as session:
        task = tasks.enqueue(session, "bench.read", title="bench", created_by="bench")
        issued = issue_token(
            session, user_ref="user:default/bench", roles=["admin"], name="bench", created_by="b"
        )
        session.commit()
        task_id, secret = task.id, issued.secret
    engine.dispose()
    assert task_id is not None
    return task_id, secret


async def hammer(
    client: httpx.AsyncClient, url: str, seconds: float, concurrency: int
) -> tuple[int, list[float]]:
    """Requests completed in ``seconds`` by ``concurrency`` callers, and their latencies."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def caller() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.get(url)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.text[:200]}")

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return len(latencies), latencies


async def sign_in_cookie(base: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/auth/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        await client.post("/auth/local", data={"user": "root", "csrf_token": token})
        return client.cookies


async def measure(args: argparse.Namespace) -> int:
    data_dir = tempfile.mkdtemp(prefix="paved-bench-gate-")
    task_id, secret = prepare(data_dir)
    port = args.port
    env = {
        **os.environ,
        "PAVED_AUTH__LOCAL__ENABLED": "true",
        "PAVED_TASKS__IN_PROCESS_WORKER": "false",
    }
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--data-dir", data_dir], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, server)
        cookies = await sign_in_cookie(base)
        token = {"Authorization": f"Bearer {secret}"}
        # Each gated caller has an ungated twin sending the very same request (credentials
        # included, which the ungated route ignores), so the difference is the gate alone.
        callers = {
            "API token, ungated": (f"/bench/ungated/{task_id}", token, None),
            "API token, gated": (f"/bench/gated/{task_id}", token, None),
            "session, ungated": (f"/bench/ungated/{task_id}", {}, cookies),
            "session, gated": (f"/bench/gated/{task_id}", {}, cookies),
        }
        rates: dict[str, list[float]] = {name: [] for name in callers}
        latencies: dict[str, list[float]] = {name: [] for name in callers}
        limits = httpx.Limits(max_connections=args.concurrency)
        for round_number in range(args.rounds + 1):
            # Whoever goes first in a round does measurably better or worse (connections of
            # the caller before still closing, the collector), so the order flips every
            # round: each pair runs ungated-then-gated as often as gated-then-ungated.
            order = list(callers.items())
            if round_number % 2:
                order.reverse()
            for name, (path, headers, jar) in order:
                async with httpx.AsyncClient(
                    base_url=base, headers=headers, cookies=jar, limits=limits
                ) as client:
                    count, times = await hammer(client, path, args.seconds, args.concurrency)
                if round_number == 0:
                    continue  # warm-up: imports, caches, each thread's policy engine
                rates[name].append(count / args.seconds)
                latencies[name].extend(times)
        print(
            f"{args.rounds} rounds of {args.seconds:g} s (order flipped each round), "
            f"{args.concurrency} concurrent callers, uvicorn (1 process), SQLite"
        )
        worst = 0.0
        for name in callers:
            rate = statistics.median(rates[name])
            ordered = sorted(latencies[name])
            p50 = ordered[len(ordered) // 2] * 1000
            p99 = ordered[int(len(ordered) * 0.99)] * 1000
            line = f"  {name:18} {rate:7.0f} req/s  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms"
            if name.endswith(", gated"):
                # Each round against its ungated twin run just before, so drift cancels out.
                twin = rates[name.replace(", gated", ", ungated")]
                costs = [1 - g / u for g, u in zip(rates[name], twin, strict=True)]
                overhead = statistics.median(costs)
                worst = max(worst, overhead)
                line += f"  gate costs {overhead:6.1%} (median of the rounds)"
            print(line)
        verdict = "meets" if worst <= TARGET_OVERHEAD else "MISSES"
        print(f"worst gate cost {worst:.1%}: {verdict} the target of at most {TARGET_OVERHEAD:.0%}")
        return 0 if worst <= TARGET_OVERHEAD else 1
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, str(Path(args.data_dir)))
        return 0
    return asyncio.run(measure(args))


if __name__ == "__main__":
    sys.exit(main())
