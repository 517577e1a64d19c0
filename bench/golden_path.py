"""The golden path against a real portal, over HTTP: how long each step takes from the
template to a promoted canary in production, what the router adds to a prediction, and how
fast a failing canary is rolled back.

`paved up --demo` serves the portal in its own process on a temporary data directory
(SQLite, its in-process task worker, the golden paths registered, MLflow's embedded store
under the data directory; the embedded MLflow server is off, the bench writes to the store
directly), its model servers on ports of their own. The worker looks for work every
`tasks.poll_interval` (0.5 s by default), which each step that runs a task waits for once;
training and model servers starting take far longer, so the bench keeps the default unless
`--poll-interval` lowers it (polling more often also takes CPU from the router). alice (an ML
engineer of the fraud team) does the work and carol (its team lead) approves, each with a
token issued in the database.

1. generate the project from the classification template (`POST /api/scaffolder/v2/tasks`)
2. train it locally (`POST /api/training/jobs`)
3. register the run's model (`POST /api/registry/models/{name}/versions`)
4. approve it as carol (`POST .../versions/{v}/approvals`)
5. deploy it to staging, until it is serving
6. deploy it to production as the stable version; train, register and approve a second
   version and deploy it as a 10 % canary in production
7. promote the canary (`PATCH /api/serving/deployments/{name}`)

Then, on staging, sequential predictions with keep-alive connections through the router
(`POST /serve/{deployment}/invocations`) against the same requests sent straight to the
model server, one each way in turn (so both meet the same moments of a busy machine), with
the portal's CPU time a prediction; and in production, a version that fails every
prediction deployed as a 50 % canary under continuous requests (from its first failed
answer until the deployment shows no canary and every answer comes from stable), then a
manual rollback of a healthy canary (from the request until every answer comes from stable).

Targets: the golden path under 60 s; the router adds at most 2 ms at p99; the automatic
rollback under 10 s; the manual rollback under 5 s. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, where bench/catalog.py would hide
# the catalog package the portal loads.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import httpx

from portal.testing import wait_until_ready

GOLDEN_PATH_TARGET = 60.0
ROUTER_P99_TARGET_MS = 2.0
AUTOMATIC_ROLLBACK_TARGET = 10.0
MANUAL_ROLLBACK_TARGET = 5.0

TEMPLATE = "template:default/classification-model"
# Not a name of the demo catalog (its churn-predictor belongs to another team).
NAME = "card-risk-classifier"
FRAUD = "group:default/fraud"
ALICE = "user:default/alice"
CAROL = "user:default/carol"
VERSIONS = f"/api/registry/models/{NAME}/versions"
DEPLOYMENTS = "/api/serving/deployments"
STAGING = f"{NAME}-staging"
PRODUCTION = f"{NAME}-production"
ROW = {"dataframe_split": {"columns": ["amount", "account_age_days", "items", "night_time"],
                          "data": [[120.0, 30, 4, 1], [80.0, 1400, 1, 0]]}}  # fmt: skip
# Seconds between two looks at a task or deployment the bench waits for.
FOLLOW_EVERY = 0.05
# Answers in a row from stable after which the canary is taken as gone: at a 50 % split, a
# canary still routed to would answer one of them but for a chance of 2**-40.
STABLE_IN_A_ROW = 40
# The model the automatic rollback is tried with: it raises on every prediction. Logged as
# code, so its server needs nothing of the bench to load it.
BROKEN_MODEL = """
import mlflow


class Broken(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this version is broken")


mlflow.models.set_model(Broken())
"""


class BenchFailed(Exception):
    """A step the bench takes did not do what it should: the figures would mean nothing."""


# The portal ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def issue_tokens(data_dir: Path) -> tuple[str, str]:
    """alice's and carol's API tokens, issued in the (migrated) database."""
    from sqlmodel import Session

    from portal import schema
    from portal.auth.tokens import issue_token
    from portal.db import create_database_engine
    from portal.settings import load_settings

    engine = create_database_engine(load_settings(data_dir=data_dir))
    schema.upgrade(engine)
    secrets = []
    with Session(engine) as session:
        for user, role in ((ALICE, "ml_engineer"), (CAROL, "team_lead")):
            issued = issue_token(
                session,
                user_ref=user,
                roles=[role],
                groups=[FRAUD],
                name="bench",
                created_by="bench",
            )
            secrets.append(issued.secret)
        session.commit()
    engine.dispose()
    return secrets[0], secrets[1]


def start_portal(data_dir: Path, port: int, poll_interval: float | None) -> subprocess.Popen[bytes]:
    log = (data_dir / "portal.log").open("ab")
    env = {
        **os.environ,
        "PAVED_DATA_DIR": str(data_dir),
        "PAVED_LOG_LEVEL": "warning",
        # The bench writes to the embedded store itself: no MLflow server (nor its port).
        "PAVED_MLFLOW__EMBEDDED_SERVER": "false",
    }
    if poll_interval is not None:
        env["PAVED_TASKS__POLL_INTERVAL"] = str(poll_interval)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "portal", "up", "--demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def stop_portal(server: subprocess.Popen[bytes]) -> None:
    """Stop the portal the way Ctrl-C does: it stops its model servers on the way out."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def log_tail(data_dir: Path, lines: int = 30) -> str:
    try:
        text = (data_dir / "portal.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# Steps of the golden path ----------------------------------------------------------------


def expect(answer: httpx.Response, status: int, what: str) -> Any:
    if answer.status_code != status:
        raise BenchFailed(f"{what} answered {answer.status_code}: {answer.text[:500]}")
    return answer.json()


def follow(
    client: httpx.Client, path: str, done: Callable[[dict[str, Any]], bool], what: str,
    *, failed: Callable[[dict[str, Any]], bool], timeout: float = 300,
) -> dict[str, Any]:  # fmt: skip
    """GET ``path`` until ``done`` holds; fail when ``failed`` does, or at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = expect(client.get(path), 200, what)
        if done(found):
            return found
        if failed(found):
            raise BenchFailed(f"{what}: {str(found)[:800]}")
        if time.monotonic() > deadline:
            raise BenchFailed(f"{what}: not done in {timeout:g} s: {str(found)[:500]}")
        time.sleep(FOLLOW_EVERY)


def generate(alice: httpx.Client) -> None:
    created = expect(
        alice.post(
            "/api/scaffolder/v2/tasks",
            json={"templateRef": TEMPLATE, "values": {"name": NAME, "owner": FRAUD}},
        ),
        201,
        "starting the template",
    )
    path = f"/api/scaffolder/v2/tasks/{created['id']}"
    follow(
        alice, path, lambda run: run["status"] == "completed", "the template's run",
        failed=lambda run: run["status"] in ("failed", "cancelled"),
    )  # fmt: skip


def train(alice: httpx.Client, **parameters: Any) -> str:
    """Train the project locally; the job's MLflow run id."""
    job = expect(
        alice.post(
            "/api/training/jobs",
            json={"project": f"component:default/{NAME}", "parameters": parameters},
        ),
        201,
        "submitting a training job",
    )
    done = follow(
        alice, f"/api/training/jobs/{job['id']}", lambda j: j["status"] == "succeeded",
        "the training job", failed=lambda j: j["status"] in ("failed", "cancelled"),
    )  # fmt: skip
    return str(done["mlflow_run_id"])


def register(alice: httpx.Client, run_id: str) -> str:
    version = expect(alice.post(VERSIONS, json={"run_id": run_id}), 201, "registering")
    return str(version["version"])


def approve(carol: httpx.Client, version: str) -> None:
    expect(
        carol.post(f"{VERSIONS}/{version}/approvals", json={"comment": "looks right"}),
        201,
        f"approving v{version}",
    )


def deploy(alice: httpx.Client, version: str, environment: str, **extra: Any) -> dict[str, Any]:
    """Deploy and wait until the deployment serves with nothing pending."""
    body = {"model": NAME, "version": version, "environment": environment, **extra}
    started = expect(alice.post(DEPLOYMENTS, json=body), 202, f"deploying v{version}")
    return follow(
        alice, f"{DEPLOYMENTS}/{started['name']}",
        lambda d: d["status"] == "serving" and not d["pending"],
        f"deploying v{version} to {environment}", failed=lambda d: d["status"] == "failed",
    )  # fmt: skip


def promote(alice: httpx.Client) -> dict[str, Any]:
    promoted: dict[str, Any] = expect(
        alice.patch(f"{DEPLOYMENTS}/{PRODUCTION}", json={"promote": True}), 200, "promoting"
    )
    return promoted


@dataclass
class Stages:
    """Seconds of each step, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    def time(self, label: str, step: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = step()
        self.seconds[label] = time.perf_counter() - started
        print(f"  {label:44} {self.seconds[label]:6.2f} s", flush=True)
        return result

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def golden_path(alice: httpx.Client, carol: httpx.Client) -> tuple[Stages, str, str]:
    """Walk the path; the stages' times, the first and the promoted version."""
    stages = Stages()
    stages.time("1 generate the project", lambda: generate(alice))
    run = stages.time("2 train v1 locally", lambda: train(alice))
    first = stages.time("3 register v1", lambda: register(alice, run))
    stages.time("4 approve v1 (carol, team lead)", lambda: approve(carol, first))
    stages.time("5 deploy v1 to staging", lambda: deploy(alice, first, "staging"))
    production = stages.time(
        "6a deploy v1 to production", lambda: deploy(alice, first, "production")
    )
    if production["stable_version"] != first:
        raise BenchFailed(f"production serves {production['stable_version']}, not v{first}")
    run = stages.time(
        "6b train v2 (random forest)", lambda: train(alice, algorithm="random-forest")
    )
    second = stages.time("6c register v2", lambda: register(alice, run))
    stages.time("6d approve v2", lambda: approve(carol, second))
    canary = stages.time(
        "6e deploy v2 as a 10 % canary in production",
        lambda: deploy(alice, second, "production", canary_percent=10),
    )
    if (canary["canary_version"], canary["canary_percent"]) != (second, 10):
        raise BenchFailed(f"expected a 10 % canary v{second}: {canary}")
    promoted = stages.time("7 promote v2", lambda: promote(alice))
    if promoted["stable_version"] != second:
        raise BenchFailed(f"after the promotion production serves {promoted['stable_version']}")
    return stages, first, second


# The router's overhead ---------------------------------------------------------------------


@dataclass
class Latencies:
    """Sequential requests' latencies, in milliseconds."""

    label: str
    milliseconds: list[float] = field(default_factory=list)

    def percentile(self, percent: float) -> float:
        ordered = sorted(self.milliseconds)
        rank = max(1, -(-percent * len(ordered) // 100))  # nearest rank
        return ordered[int(rank) - 1]

    @property
    def per_second(self) -> float:
        return len(self.milliseconds) / (sum(self.milliseconds) / 1000)

    def line(self) -> str:
        return (
            f"{self.label:8} {self.per_second:7.0f} req/s   p50 {self.percentile(50):6.2f} ms   "
            f"p99 {self.percentile(99):6.2f} ms   ({len(self.milliseconds)} requests)"
        )


def time_requests(
    client: httpx.Client, url: str, headers: dict[str, str], count: int, into: Latencies
) -> None:
    for _ in range(count):
        started = time.perf_counter()
        answer = client.post(url, json=ROW, headers=headers)
        took = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise BenchFailed(f"{into.label} prediction answered {answer.status_code}")
        into.milliseconds.append(took)


def cpu_seconds(pid: int) -> float | None:
    """The CPU time process ``pid`` has used (user and system), where /proc tells it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def router_overhead(
    base: str, secret: str, requests: int, block: int, portal_pid: int
) -> tuple[Latencies, Latencies, float | None]:
    """Predictions of staging through the router and straight from its model server, and
    the portal's CPU time a prediction through it (None where it cannot be read)."""
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(timeout=30) as client:
        found = expect(client.get(f"{base}{DEPLOYMENTS}/{STAGING}", headers=auth), 200, "staging")
        model_server = found["endpoints"][found["stable_version"]].rstrip("/")
        targets = [
            (f"{base}/serve/{STAGING}/invocations", auth, Latencies("router")),
            (f"{model_server}/invocations", {}, Latencies("direct")),
        ]
        for url, headers, _ in targets:  # warm-up: connections, caches, the model
            time_requests(client, url, headers, 200, Latencies("warm-up"))
        cpu_before = cpu_seconds(portal_pid)
        for index in range(0, requests, block):
            # Alternate which goes first, so neither always follows the other.
            for url, headers, into in targets if index // block % 2 == 0 else targets[::-1]:
                time_requests(client, url, headers, min(block, requests - index), into)
        cpu_after = cpu_seconds(portal_pid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None:
        cpu_ms = (cpu_after - cpu_before) * 1000 / requests
    return targets[0][2], targets[1][2], cpu_ms


# Rollbacks ---------------------------------------------------------------------------------


def log_broken_run(data_dir: Path) -> str:
    """A run of the project's experiment that logged a model failing every prediction,
    written to the portal's embedded MLflow store."""
    import mlflow

    from portal.settings import load_settings
    from portal.tracking import ensure_experiment, tracking_client

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    settings = load_settings(data_dir=data_dir)
    experiment = ensure_experiment(settings, NAME)
    run = tracking_client(settings).create_run(experiment)
    code = data_dir / "broken_model.py"
    code.write_text(BROKEN_MODEL)
    mlflow.set_tracking_uri(settings.tracking_uri)
    # MLflow warns that the model's predict has no type hints, through a filter of its own
    # that shows it whatever the bench's filters say: its words go nowhere.
    with mlflow.start_run(run_id=run.info.run_id), contextlib.redirect_stderr(io.StringIO()):
        mlflow.pyfunc.log_model(name="model", python_model=str(code), pip_requirements=[])
    return str(run.info.run_id)


def predict(alice: httpx.Client) -> tuple[str, int, float]:
    """One prediction from production: the version that answered, its status, and when the
    answer arrived."""
    answer = alice.post(f"/serve/{PRODUCTION}/invocations", json=ROW)
    return answer.headers.get("x-paved-version", ""), answer.status_code, time.perf_counter()


def until_stable_only(alice: httpx.Client, stable: str, since: float, timeout: float) -> float:
    """Send predictions until ``STABLE_IN_A_ROW`` in a row come from ``stable``; the end of
    the last one that did not (or ``since``)."""
    last_other, in_a_row = since, 0
    deadline = time.monotonic() + timeout
    while in_a_row < STABLE_IN_A_ROW:
        version, status, at = predict(alice)
        if version == stable and status == 200:
            in_a_row += 1
        else:
            last_other, in_a_row = at, 0
        if time.monotonic() > deadline:
            raise BenchFailed(f"answers still come from other than v{stable} ({version})")
    return last_other


def automatic_rollback(alice: httpx.Client, broken: str, stable: str) -> tuple[float, str]:
    """From the broken canary's first failed answer until the deployment shows no canary
    and every answer comes from stable; and the judge's reason."""
    first_failure = None
    looked = 0.0
    deadline = time.monotonic() + 60
    while True:
        version, status, at = predict(alice)
        if version == broken and status < 500:
            raise BenchFailed(f"the broken v{broken} answered {status}: is its server another's?")
        if first_failure is None and version == broken:
            first_failure = at
        if first_failure is not None and at - looked >= FOLLOW_EVERY:
            found = expect(alice.get(f"{DEPLOYMENTS}/{PRODUCTION}"), 200, "production")
            looked = time.perf_counter()
            if found["canary_version"] is None:
                break
        if time.monotonic() > deadline:
            raise BenchFailed("the broken canary was not rolled back in 60 s")
    assert first_failure is not None
    ended = max(looked, until_stable_only(alice, stable, looked, timeout=30))
    event = found["events"][0]
    if event["kind"] != "rollback" or found["stable_version"] != stable:
        raise BenchFailed(f"expected a rollback to v{stable}: {found}")
    return ended - first_failure, f"{event['actor']}: {event['message']}"


def manual_rollback(alice: httpx.Client, canary: str, stable: str) -> float:
    """From the rollback request until every answer comes from stable, a healthy canary
    taking 50 % of the traffic before it."""
    deploy(alice, canary, "production", canary_percent=50)
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while seen != {canary, stable}:  # the router routes to both
        seen.add(predict(alice)[0])
        if time.monotonic() > deadline:
            raise BenchFailed(f"production answered only from {seen}")
    started = time.perf_counter()
    found = expect(alice.post(f"{DEPLOYMENTS}/{PRODUCTION}/rollback"), 200, "rolling back")
    answered = time.perf_counter()
    if found["canary_version"] is not None:
        raise BenchFailed(f"the rollback left a canary: {found}")
    return until_stable_only(alice, stable, answered, timeout=30) - started


# Running it --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One figure of the summary, with its target (None: shown for context)."""

    label: str
    value: float
    unit: str
    target: float | None = None
    bound: str = "under"  # or "at most"

    @property
    def is_met(self) -> bool:
        if self.target is None:
            return True
        return self.value < self.target if self.bound == "under" else self.value <= self.target

    def line(self) -> str:
        shown = (
            f"{self.value:.2f} {self.unit}" if self.unit != "req/s" else f"{self.value:.0f} req/s"
        )
        if self.target is None:
            return f"  {self.label:42} {shown:>11}"
        verdict = "met" if self.is_met else "MISSED"
        target = f"target {self.bound} {self.target:g} {self.unit}"
        return f"  {self.label:42} {shown:>11}   {target}: {verdict}"


def run(args: argparse.Namespace, data_dir: Path) -> list[Figure]:
    alice_secret, carol_secret = issue_tokens(data_dir)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_portal(data_dir, port, args.poll_interval)
    try:
        wait_until_ready(base, server, timeout=90)
        alice = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {alice_secret}"}, timeout=60
        )
        carol = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {carol_secret}"}, timeout=60
        )
        with alice, carol:
            polling = (
                f"tasks.poll_interval lowered to {args.poll_interval:g} s from 0.5 s"
                if args.poll_interval is not None
                else "tasks.poll_interval 0.5 s, the default"
            )
            print(f"golden path ({polling}; SQLite, one portal process):", flush=True)
            stages, first, second = golden_path(alice, carol)
            print(f"  {'total':44} {stages.total:6.2f} s", flush=True)
            expect(alice.post(f"/serve/{STAGING}/invocations", json=ROW), 200, "staging")

            print(f"router overhead ({args.requests} sequential requests each, staging v{first}):")
            router, direct, cpu_ms = router_overhead(
                base, alice_secret, args.requests, args.block, server.pid
            )
            p50 = router.percentile(50) - direct.percentile(50)
            p99 = router.percentile(99) - direct.percentile(99)
            print(f"  {router.line()}\n  {direct.line()}")
            print(f"  the router adds {p50:.2f} ms at p50 and {p99:.2f} ms at p99", flush=True)
            if cpu_ms is not None:
                print(f"  the portal's CPU time a prediction: {cpu_ms:.2f} ms")

            print("rollbacks (production):", flush=True)
            broken = register(alice, log_broken_run(data_dir))
            approve(carol, broken)
            deploy(alice, broken, "production", canary_percent=50)
            automatic, reason = automatic_rollback(alice, broken, second)
            print(f"  automatic, broken v{broken} as a 50 % canary: {automatic:.2f} s ({reason})")
            manual = manual_rollback(alice, first, second)
            print(f"  manual, healthy v{first} as a 50 % canary: {manual:.2f} s", flush=True)
    except BaseException:
        tail = log_tail(data_dir)
        if tail:
            print(f"the portal's log ends with:\n{tail}", file=sys.stderr)
        raise
    finally:
        stop_portal(server)
    return [
        Figure("golden path, template to promoted canary", stages.total, "s", GOLDEN_PATH_TARGET),
        Figure("router req/s", router.per_second, "req/s"),
        Figure("direct req/s", direct.per_second, "req/s"),
        Figure("router p50 minus direct p50", p50, "ms"),
        Figure("router p99 minus direct p99", p99, "ms", ROUTER_P99_TARGET_MS, "at most"),
        Figure("automatic rollback", automatic, "s", AUTOMATIC_ROLLBACK_TARGET),
        Figure("manual rollback", manual, "s", MANUAL_ROLLBACK_TARGET),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0, help="the portal's (default: a free one)")
    parser.add_argument(
        "--poll-interval", type=float, help="tasks.poll_interval of the portal (default 0.5)"
    )
    parser.add_argument("--requests", type=int, default=4000, help="predictions each way")
    parser.add_argument(
        "--block", type=int, default=1, help="predictions in a row before the other way's"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="paved-bench-golden-path-"))
    try:
        figures = run(args, data_dir)
    except BenchFailed as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("summary:")
    for figure in figures:
        print(figure.line())
    verdict = all(figure.is_met for figure in figures)
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
