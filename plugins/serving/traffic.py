"""The router of one portal process: each deployment's route (cached from the database),
forwarding through it, the metrics it records, the canary's judge that rolls a failing canary
back, the per-minute figures the charts show, and the features drift is computed from.

A route is read from the database at most once per ``serving.route_cache_seconds``; a change
made in this process (a rollback, a promotion) takes effect at once, one made by another
process within that time. A route that is due to be read again keeps answering while a
thread reads it, so no request waits on the database but the first.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from plugins.serving import service, views
from plugins.serving.drift import FeatureStats, population_stability_index
from plugins.serving.models import Deployment, MetricMinute
from plugins.serving.router import (
    PROBLEM_MEDIA_TYPE,
    Forwarded,
    Forwarder,
    Metrics,
    Route,
    judge_canary,
    nearest_rank,
)
from plugins.serving.runtimes import SPLIT_BY_RUNTIME
from portal import NotFound, PavedError, Settings
from portal.errors import EngineUnavailable

log = logging.getLogger("paved.serving")

FLUSH_EVERY = 10.0  # seconds between writes of the per-minute figures
RECOVER_EVERY = 30.0  # seconds between two attempts to start a deployment's servers again
DRIFT_MIN_VALUES = 100  # observed values of a feature before its PSI means anything


@dataclass(frozen=True)
class Entry:
    """A deployment's route as this process knows it, or why it has none."""

    route: Route | None
    problem: PavedError | None  # what a request for it is answered when there is no route
    loaded_at: float


@dataclass(frozen=True)
class Rolled:
    """An automatic rollback the judge made."""

    deployment: str
    canary_version: str
    reason: str


class MinuteFigures:
    """Requests per deployment, version and minute, until they are written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str, datetime], list[Any]] = {}
        self._rows: dict[tuple[str, str, datetime], int] = {}

    def record(self, deployment: str, version: str, latency_ms: float, is_error: bool) -> None:
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        key = (deployment, version, minute)
        with self._lock:
            figures = self._open.get(key)
            if figures is None:
                figures = self._open[key] = [0, 0, []]
            figures[0] += 1
            figures[1] += is_error
            figures[2].append(latency_ms)

    def flush(self, engine: Engine) -> int:
        """Write every minute's figures (a minute still open is written again later);
        returns the rows written."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        with self._lock:
            taken = {key: (f[0], f[1], sorted(f[2])) for key, f in self._open.items()}
            for key in [key for key in self._open if key[2] < now]:
                del self._open[key]
        if not taken:
            return 0
        with Session(engine) as session:
            for (deployment, version, minute), (requests, errors, latencies) in taken.items():
                key = (deployment, version, minute)
                values = {
                    "requests": requests,
                    "errors": errors,
                    "p50_ms": nearest_rank(latencies, 50),
                    "p99_ms": nearest_rank(latencies, 99),
                }
                row_id = self._rows.get(key)
                if row_id is None:
                    row = MetricMinute(
                        deployment=deployment, version=version, minute=minute, **values
                    )
                    session.add(row)
                    session.flush()
                    assert row.id is not None
                    self._rows[key] = row.id
                else:
                    session.execute(
                        update(MetricMinute).where(col(MetricMinute.id) == row_id).values(**values)
                    )
            session.commit()
        for key in [key for key in self._rows if key[2] < now]:
            del self._rows[key]
        return len(taken)


class Traffic:
    """Routes, forwarding, metrics, the judge and drift for one portal process."""

    def __init__(
        self, engine: Engine, settings: Settings, *, forwarder: Forwarder | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = Metrics(window=settings.serving.metrics_window)
        self.forwarder = forwarder or Forwarder(self.metrics)
        self.minutes = MinuteFigures()
        self._routes: dict[str, Entry] = {}
        # Bumped by each invalidation: a read begun before one is not kept.
        self._generations: dict[str, int] = {}
        self._routes_lock = threading.Lock()
        self._reading: set[str] = set()
        self._reader: ThreadPoolExecutor | None = None
        self._features: dict[str, FeatureStats] = {}
        self._down: dict[str, str] = {}  # deployment: why, until the loop acts on it
        self._recovered: dict[str, float] = {}
        self.runtimes: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        service.watch_routes(self)

    # Routes ------------------------------------------------------------------------------

    def entry(self, name: str) -> Entry:
        """The route of ``name``, from the cache while it is fresh (call from a thread when
        it may read the database: ``is_fresh`` says whether it will not)."""
        found = self._routes.get(name)
        if found is not None and self.is_fresh(found):
            return found
        return self._read(name)

    def cached(self, name: str) -> Entry | None:
        """The route of ``name`` without reading the database here: a fresh one, or one due
        to be read again, which a thread then reads while it keeps answering. None when
        ``entry`` must read it (unknown, invalidated, or a stale refusal)."""
        found = self._routes.get(name)
        if found is None or self.is_fresh(found):
            return found
        if found.route is None:
            return None
        self._read_soon(name)
        return found

    def is_fresh(self, entry: Entry) -> bool:
        return time.monotonic() - entry.loaded_at < self.settings.serving.route_cache_seconds

    def invalidate(self, name: str) -> None:
        with self._routes_lock:
            self._generations[name] = self._generations.get(name, 0) + 1
            self._routes.pop(name, None)

    def _read(self, name: str) -> Entry:
        generation = self._generations.get(name, 0)
        with Session(self.engine) as session:
            deployment = session.exec(
                select(Deployment).where(col(Deployment.name) == name)
            ).first()
            entry = self._entry_of(name, deployment)
        with self._routes_lock:
            # Invalidated while it was read: what was read may predate the change.
            if self._generations.get(name, 0) == generation:
                self._routes[name] = entry
        return entry

    def _read_soon(self, name: str) -> None:
        """Read ``name``'s route again in a thread, unless one already does."""
        with self._routes_lock:
            if name in self._reading or self._stop.is_set():
                return
            self._reading.add(name)
            if self._reader is None:
                self._reader = ThreadPoolExecutor(1, thread_name_prefix="paved-routes")
            reader = self._reader
        reader.submit(self._read_in_background, name)

    def _read_in_background(self, name: str) -> None:
        try:
            self._read(name)
        except Exception:  # the stale route keeps answering; the next request tries again
            log.exception("could not read the route of %s", name)
        finally:
            with self._routes_lock:
                self._reading.discard(name)

    def _entry_of(self, name: str, deployment: Deployment | None) -> Entry:
        now = time.monotonic()
        if deployment is None:
            return Entry(None, NotFound(f"there is no deployment {name}"), now)
        if deployment.status == "removing":
            return Entry(None, EngineUnavailable(f"deployment {name} is being removed"), now)
        stable = deployment.stable_version
        endpoints = deployment.endpoints or {}
        limits = views.thresholds(deployment)
        if stable is not None and SPLIT_BY_RUNTIME in endpoints:
            route = Route(name, stable, endpoints[SPLIT_BY_RUNTIME])
            return Entry(route, None, now)
        if stable is None or stable not in endpoints:
            why = deployment.message or "no version answers yet"
            problem = EngineUnavailable(f"deployment {name} is not serving: {why}")
            return Entry(None, problem, now)
        canary = deployment.canary_version
        has_canary = canary is not None and canary in endpoints
        route = Route(
            deployment=name,
            stable_version=stable,
            stable_url=endpoints[stable],
            canary_version=canary if has_canary else None,
            canary_url=endpoints[canary] if has_canary and canary else None,
            canary_percent=deployment.canary_percent if has_canary else 0,
            max_error_rate=limits["max_error_rate"],
            max_p99_ms=limits["max_p99_ms"],
        )
        return Entry(route, None, now)

    # Forwarding --------------------------------------------------------------------------

    async def forward(self, route: Route, body: bytes, content_type: str | None) -> Forwarded:
        answer = await self.forwarder.forward(route, body, content_type)
        self.minutes.record(
            route.deployment, answer.version, answer.latency_ms, answer.status >= 500
        )
        if answer.status == 503 and answer.headers.get("content-type") == PROBLEM_MEDIA_TYPE:
            self._down[route.deployment] = (
                f"the model server of v{answer.version} stopped answering"
            )
        if answer.version == route.stable_version and answer.status < 400:
            self.features(route.deployment).observe(body, content_type)
        return answer

    def features(self, deployment: str) -> FeatureStats:
        found = self._features.get(deployment)
        if found is None:
            found = self._features.setdefault(
                deployment, FeatureStats(sample_every=self.settings.serving.drift_sample_every)
            )
        return found

    def forget(self, deployment: str) -> None:
        self.invalidate(deployment)
        self.metrics.forget(deployment)
        self._features.pop(deployment, None)

    # Drift -------------------------------------------------------------------------------

    def drift(self, deployment: Deployment) -> list[dict[str, Any]]:
        """Each feature of the training data: its PSI over the requests seen (None until
        ``DRIFT_MIN_VALUES`` of them), and whether it is over the threshold."""
        threshold = views.thresholds(deployment)["drift_threshold"] or 0.2
        stats = self.features(deployment.name)
        found = []
        for feature, reference in sorted((deployment.reference or {}).items()):
            values = stats.values(feature)
            psi = None
            if len(values) >= DRIFT_MIN_VALUES:
                psi = population_stability_index(
                    reference["edges"], reference["proportions"], values
                )
                psi = psi if math.isfinite(psi) else None
            found.append(
                {
                    "feature": feature,
                    "psi": psi,
                    "observed": len(values),
                    "threshold": threshold,
                    "alert": psi is not None and psi > threshold,
                }
            )
        return found

    # The judge ---------------------------------------------------------------------------

    def judge(self) -> list[Rolled]:
        """Roll back every canary this process routes to that breaks a threshold."""
        rolled = []
        for name, entry in list(self._routes.items()):
            route = entry.route
            if route is None or route.canary_version is None:
                continue
            reason = judge_canary(
                route, self.metrics, min_requests=self.settings.serving.min_canary_requests
            )
            if reason is None:
                continue
            with Session(self.engine) as session:
                done = service.automatic_rollback(session, name, reason)
                session.commit()  # the rollback tells this process's routers once committed
            if done is None:
                self.invalidate(name)  # its canary was gone already: read what serves
            else:
                log.warning("%s: %s; rolled back", name, reason)
                self.metrics.reset(name, route.canary_version)
                rolled.append(Rolled(name, route.canary_version, reason))
        return rolled

    def recover(self) -> list[str]:
        """Start again the servers of deployments whose server stopped answering (at most
        once per ``RECOVER_EVERY`` seconds each); returns the deployments."""
        recovering = []
        now = time.monotonic()
        for name, why in list(self._down.items()):
            del self._down[name]
            if now - self._recovered.get(name, -RECOVER_EVERY) < RECOVER_EVERY:
                continue
            with Session(self.engine) as session:
                will = service.recover(session, name, why, self.runtimes)
                session.commit()
            if will:
                self._recovered[name] = now
                log.warning("%s: %s; starting it again", name, why)
                recovering.append(name)
        return recovering

    def start(self) -> None:
        """Judge canaries every ``serving.judge_interval`` seconds and write the per-minute
        figures, in a thread, until ``stop``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="paved-serving", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._routes_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.shutdown(wait=True, cancel_futures=True)
        try:
            self.minutes.flush(self.engine)
        except Exception:  # the database may be gone at shutdown; the figures are not vital
            log.exception("could not write the last serving figures")

    def _loop(self) -> None:
        flushed = time.monotonic()
        while not self._stop.wait(self.settings.serving.judge_interval):
            try:
                self.judge()
                self.recover()
                if time.monotonic() - flushed >= FLUSH_EVERY:
                    self.minutes.flush(self.engine)
                    flushed = time.monotonic()
            except Exception:  # keep judging: one failed round must not end the loop
                log.exception("the serving loop failed a round")
