"""SOC 2 evidence: a quarter with 100,000 audit events exports as a signed pack (target:
under 30 s) and verifies offline (target: under 10 s).

The quarter's events are written as a real hash chain (sign-ins, catalog changes,
deployments, denials, spread over the quarter's days), then the export task runs as the
portal's worker runs it, every built-in collector included, and the pack is verified as
``paved evidence verify`` does.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/catalog.py would hide
# the catalog package the portal loads.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sqlalchemy import insert, update
from sqlmodel import Session, col

from plugins.soc2 import service
from plugins.soc2.pack import verify_pack
from plugins.soc2.service.reviews import Quarter
from plugins.soc2.signing import signing_key
from portal import schema
from portal.app import create_app
from portal.audit import digest
from portal.auth.identity import Identity
from portal.gate import Authority
from portal.models import GENESIS_HASH, AuditEvent, AuditHead
from portal.settings import load_settings
from portal.tasks import TaskHandler
from portal.worker import Worker

EXPORT_TARGET, VERIFY_TARGET = 30.0, 10.0  # seconds
ACTIONS = [
    ("auth.session.create", "succeeded"),
    ("catalog.entity.update", "succeeded"),
    ("scaffolder.template.run", "succeeded"),
    ("serving.deployment.create", "denied"),
    ("training.job.submit", "succeeded"),
    ("registry.model.approve", "failed"),
]


def write_quarter(engine, quarter: Quarter, events: int) -> None:  # type: ignore[no-untyped-def]
    """``events`` chained audit events spread evenly over the quarter, in batches."""
    start = datetime.combine(quarter.start, day_time(), UTC)
    span = datetime.combine(quarter.end + timedelta(days=1), day_time(), UTC) - start
    step = span / events
    randomly = random.Random(7)
    previous, rows = GENESIS_HASH, []
    with Session(engine) as session:
        for number in range(1, events + 1):
            action, outcome = ACTIONS[number % len(ACTIONS)]
            event = AuditEvent(
                id=number,
                at=start + step * (number - 1),
                actor=f"user:default/person{randomly.randrange(40)}",
                action=action,
                resource=f"component:default/project{number % 300}",
                allowed=outcome != "denied",
                reasons=["your role ml_engineer allows it"],
                request_id=f"{number:032x}",
                outcome=outcome,
                detail={"via": "oidc", "roles": ["ml_engineer"]} if number % 6 == 0 else {},
                prev_hash=previous,
                hash="",
            )
            event.hash = previous = digest(event)
            rows.append(event.model_dump())
            if len(rows) == 5000:
                session.execute(insert(AuditEvent), rows)
                rows.clear()
        if rows:
            session.execute(insert(AuditEvent), rows)
        session.execute(
            update(AuditHead)
            .where(col(AuditHead.id) == 1)
            .values(length=events, last_hash=previous)
        )
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    quarter = Quarter.of(date.today()).previous()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            data_dir=Path(folder), log_format="text", tasks={"in_process_worker": False}
        )
        app = create_app(settings)
        engine = app.state.engine
        schema.upgrade(engine)
        began = time.perf_counter()
        write_quarter(engine, quarter, args.events)
        print(
            f"wrote {args.events:,} chained audit events over {quarter} "
            f"in {time.perf_counter() - began:.1f} s"
        )
        worker = Worker(
            engine,
            [TaskHandler(service.TASK_KIND, service.run_export, title="Evidence export")],
            settings.tasks,
            portal_settings=settings,
            authority=Authority(app.state.policy, app.state.plugins, engine, settings),
        )
        with Session(engine, expire_on_commit=False) as session:
            asked = service.request_export(
                session,
                quarter.start,
                quarter.end,
                settings,
                by=Identity("user:default/audrey", roles=("auditor",)),
            )
            session.commit()
        began = time.perf_counter()
        worker.run_once()
        exported = time.perf_counter() - began
        with Session(engine) as session:
            done = service.get_export(session, asked.id or 0)
        if done.status != "succeeded":
            raise SystemExit(f"export failed: {done.error}")
        pack = settings.evidence_dir / str(done.file_name)
        began = time.perf_counter()
        check = verify_pack(pack, signing_key(settings).public_key())
        verified = time.perf_counter() - began
        if not check.is_intact:
            raise SystemExit("verify failed: " + "; ".join(check.problems))
        print(
            f"export: {exported:.1f} s for {done.events:,} events, "
            f"pack {pack.stat().st_size / 1e6:.1f} MB (target < {EXPORT_TARGET:.0f} s)"
        )
        print(
            f"verify: {verified:.1f} s, {check.files} files, {check.events:,} events "
            f"(target < {VERIFY_TARGET:.0f} s)"
        )
        print("controls: " + ", ".join(f"{k} {v}" for k, v in done.controls.items()))
        if exported >= EXPORT_TARGET or verified >= VERIFY_TARGET:
            raise SystemExit("a target was missed")


if __name__ == "__main__":
    main()
