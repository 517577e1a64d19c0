"""How fast a template runs: a dry run of the classification golden path, and a full run
(render, publish to git, register in the catalog) from the click to the new entity's page.

`paved up --demo` serves the portal in its own process (SQLite, its in-process task worker,
which looks for work every `tasks.poll_interval`, 0.5 s by default), with the golden paths
registered. The bench sends what the Create button sends (`POST /api/scaffolder/v2/tasks`),
follows the run until it is completed, then loads the new Component's page; it prints the
median and worst of several runs. Targets: dry run under 1 s, full run under 10 s.
"""

from __future__ import annotations

import argparse
import os
import signal
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

from portal.testing import wait_until_ready

DRY_RUN_TARGET = 1.0
FULL_RUN_TARGET = 10.0
TEMPLATE = "template:default/classification-model"


def admin_token(data_dir: str) -> str:
    from sqlmodel import Session

    from portal import schema
    from portal.auth.tokens import issue_token
    from portal.db import create_database_engine
    from portal.settings import load_settings

    engine = create_database_engine(load_settings(data_dir=data_dir))
    schema.upgrade(engine)
    with Session(engine) as session:
        issued = issue_token(
            session,
            user_ref="user:default/bench",
            roles=["admin"],
            groups=["group:default/fraud"],
            name="bench",
            created_by="bench",
        )
        session.commit()
    engine.dispose()
    return issued.secret


def dry_run(client: httpx.Client, name: str) -> float:
    started = time.perf_counter()
    answer = client.post(
        "/api/scaffolder/v2/dry-run",
        json={"templateRef": TEMPLATE, "values": {"name": name, "owner": "group:default/fraud"}},
    )
    took = time.perf_counter() - started
    if answer.status_code != 200 or not answer.json()["directoryContents"]:
        raise SystemExit(f"dry run answered {answer.status_code}: {answer.text[:300]}")
    return took


def full_run(client: httpx.Client, name: str) -> float:
    started = time.perf_counter()
    created = client.post(
        "/api/scaffolder/v2/tasks",
        json={"templateRef": TEMPLATE, "values": {"name": name, "owner": "group:default/fraud"}},
    )
    if created.status_code != 201:
        raise SystemExit(f"starting a run answered {created.status_code}: {created.text[:300]}")
    task_id = created.json()["id"]
    while True:
        status = client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["status"]
        if status == "completed":
            break
        if status in ("failed", "cancelled"):
            events = client.get(f"/api/scaffolder/v2/tasks/{task_id}/events").json()
            raise SystemExit(f"run {task_id} {status}: {events[-1]['body']['message']}")
        time.sleep(0.02)
    page = client.get(f"/catalog/component/default/{name}", headers={"Accept": "text/html"})
    if page.status_code != 200:
        raise SystemExit(f"the new entity's page answered {page.status_code}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="paved-bench-scaffolder-")
    secret = admin_token(data_dir)
    server = subprocess.Popen(
        [sys.executable, "-m", "portal", "up", "--demo", "--port", str(args.port)],
        env={**os.environ, "PAVED_DATA_DIR": data_dir, "PAVED_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_until_ready(base, server, timeout=60)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            dry_run(client, "warm-up")
            dries = [dry_run(client, f"dry-{index}") for index in range(args.runs)]
            fulls = [full_run(client, f"bench-model-{index}") for index in range(args.runs)]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    verdict = max(dries) < DRY_RUN_TARGET and max(fulls) < FULL_RUN_TARGET
    print(f"classification golden path, {args.runs} runs each (SQLite, one portal process)")
    print(
        f"dry run:  median {statistics.median(dries):.3f} s, worst {max(dries):.3f} s "
        f"(target under {DRY_RUN_TARGET:.0f} s)"
    )
    print(
        f"full run: median {statistics.median(fulls):.2f} s, worst {max(fulls):.2f} s, click to "
        f"entity page (target under {FULL_RUN_TARGET:.0f} s)"
    )
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
