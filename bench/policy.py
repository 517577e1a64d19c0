"""In-process policy decisions: p50 and p99 latency over 10,000 varied inputs.

Each input varies the action, the user's roles and groups, and the resource's owner, the
way real requests do; the timing covers what the gate pays per request: handing the input
to regorus, evaluating data.paved.authz.decision and checking the answer's shape.
Target: p99 under 0.5 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, where bench/catalog.py would hide
# the catalog package the portal loads.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from portal.policy import POLICY_DIR, InProcessEngine, PolicySource

TARGET_P99_MS = 0.5
ROLES = ["data_scientist", "ml_engineer", "team_lead", "admin", "auditor"]
ACTIONS = [
    "catalog.entity.read",
    "catalog.entity.update",
    "catalog.location.create",
    "scaffolder.template.run",
    "training.job.submit",
    "registry.model.register",
    "registry.model.promote",
    "registry.model.approve",
    "serving.deployment.create",
    "serving.deployment.rollback",
    "cost.budget.update",
    "audit.log.read",
    "soc2.evidence.export",
    "admin.plugins.read",
    "portal.home.read",
]
TEAMS = ["fraud", "churn", "search", "ads", "risk", "growth"]


def varied_inputs(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    inputs = []
    for number in range(count):
        teams = rng.sample(TEAMS, rng.randint(0, 2))
        resource = (
            None
            if rng.random() < 0.3
            else {
                "ref": f"model:default/m{number}",
                "kind": "Model",
                "owner": f"group:default/{rng.choice(TEAMS)}",
                "labels": {},
            }
        )
        inputs.append(
            {
                "action": rng.choice(ACTIONS),
                "user": {
                    "ref": f"user:default/u{number}",
                    "groups": [f"group:default/{team}" for team in teams],
                    "roles": rng.sample(ROLES, rng.randint(0, 2)),
                },
                "resource": resource,
                "context": {"environment": rng.choice(["staging", "production"])},
            }
        )
    return inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    engine = InProcessEngine(lambda: PolicySource.read([POLICY_DIR]))
    inputs = varied_inputs(args.count)
    for document in inputs[:500]:  # warm up: the thread's engine, caches
        engine.decide(document)
    timings, allowed = [], 0
    for document in inputs:
        started = time.perf_counter()
        decision = engine.decide(document)
        timings.append((time.perf_counter() - started) * 1000)
        allowed += decision.allow
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(
        f"in-process decisions over {len(inputs):,} varied inputs "
        f"({allowed:,} allowed, {len(inputs) - allowed:,} denied)"
    )
    print(
        f"  p50 {p50:.3f} ms   p99 {p99:.3f} ms   max {timings[-1]:.3f} ms   "
        f"(target p99 < {TARGET_P99_MS} ms)"
    )
    print("PASS" if p99 < TARGET_P99_MS else "FAIL")
    return 0 if p99 < TARGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
