"""Paved's router core: which version answers a request, forwarding it to that version's
model server, and the metrics that judge a canary.

No routes here: the serving API builds on these. One ``Metrics`` and one ``Forwarder`` per
portal process; a ``Route`` per deployment, replaced (not changed) when the deployment is::

    metrics = Metrics(window=settings.serving.metrics_window)
    forwarder = Forwarder(metrics)           # await forwarder.aclose() at shutdown
    answer = await forwarder.forward(route, body, content_type)
    reason = judge_canary(route, metrics, min_requests=settings.serving.min_canary_requests)
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

import aiohttp

FORWARD_TIMEOUT = 30.0
# Loopback or cluster-internal servers answer a connection at once: one that takes longer
# than this is down.
CONNECT_TIMEOUT = 5.0
MAX_CONNECTIONS = 200
# Below uvicorn's 5 s, after which a model server closes an idle connection: the router lets
# go first, so it never sends on a connection the server is closing.
KEEPALIVE_SECONDS = 4.0
# Bounds a version's window in memory; at more than this many requests per window the
# window holds the latest ones.
MAX_SAMPLES = 100_000
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Headers of the model server's answer that the router passes on.
PASSED_HEADERS = ("content-type",)


# Routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a deployment's requests go: the stable version, and the canary with its share.

    ``max_error_rate`` is a fraction (0.02 is 2 %), ``max_p99_ms`` milliseconds; None
    leaves that threshold out.
    """

    deployment: str
    stable_version: str
    stable_url: str
    canary_version: str | None = None
    canary_url: str | None = None
    canary_percent: float = 0
    max_error_rate: float | None = None
    max_p99_ms: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.canary_percent <= 100:
            raise ValueError(f"canary_percent {self.canary_percent}: expected 0 to 100")
        if (self.canary_version is None) != (self.canary_url is None):
            raise ValueError("a canary needs both its version and its URL")
        if self.max_error_rate is not None and not 0 <= self.max_error_rate <= 1:
            raise ValueError(f"max_error_rate {self.max_error_rate}: expected 0 to 1")

    @property
    def versions(self) -> dict[str, str]:
        """``{version: url}``: the stable version's, then the canary's."""
        found = {self.stable_version: self.stable_url}
        if self.canary_version is not None and self.canary_url is not None:
            found[self.canary_version] = self.canary_url
        return found


def choose_version(route: Route, draw: float | None = None) -> tuple[str, str]:
    """``(version, url)`` to answer one request: the canary for ``canary_percent`` % of
    draws. ``draw`` is in [0, 1), ``random.random()`` when None; the same draw always
    chooses the same version."""
    if route.canary_version is None or route.canary_url is None:
        return route.stable_version, route.stable_url
    # A traffic split, not a secret: Python's generator is what it needs.
    if (random.random() if draw is None else draw) * 100 < route.canary_percent:  # noqa: S311
        return route.canary_version, route.canary_url
    return route.stable_version, route.stable_url


# Metrics -----------------------------------------------------------------------------------


class VersionSummary(TypedDict):
    """A version's requests in the window. Percentiles are None without requests."""

    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None
    throughput_rps: float


Clock = Callable[[], float]


class VersionMetrics:
    """The requests one version answered: the last ``window`` seconds of them (time,
    latency, error) and lifetime counts. ``record`` is cheap: it runs on every request."""

    def __init__(
        self, window: float, *, clock: Clock = time.monotonic, max_samples: int = MAX_SAMPLES
    ) -> None:
        if window <= 0:
            raise ValueError(f"window {window}: expected seconds > 0")
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, float, bool]] = deque(maxlen=max_samples)
        self._since = clock()
        self.total_requests = 0
        self.total_errors = 0

    def record(self, latency_ms: float, is_error: bool, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        with self._lock:
            self._samples.append((now, latency_ms, is_error))
            self.total_requests += 1
            self.total_errors += is_error
            self._expire(now)

    def summary(self, now: float | None = None) -> VersionSummary:
        now = self._clock() if now is None else now
        with self._lock:
            self._expire(now)
            latencies = sorted(sample[1] for sample in self._samples)
            errors = sum(1 for sample in self._samples if sample[2])
            since = self._since
        requests = len(latencies)
        # Over the window, or over the time since the counting began when that is shorter.
        seconds = max(min(self.window, now - since), 1.0)
        return VersionSummary(
            requests=requests,
            errors=errors,
            error_rate=errors / requests if requests else 0.0,
            p50_ms=nearest_rank(latencies, 50),
            p99_ms=nearest_rank(latencies, 99),
            throughput_rps=requests / seconds,
        )

    def reset(self) -> None:
        """Forget every request, the lifetime counts too."""
        with self._lock:
            self._samples.clear()
            self._since = self._clock()
            self.total_requests = 0
            self.total_errors = 0

    def _expire(self, now: float) -> None:
        oldest = now - self.window
        samples = self._samples
        while samples and samples[0][0] <= oldest:
            samples.popleft()


def nearest_rank(ordered: Sequence[float], percent: float) -> float | None:
    """The ``percent`` percentile of ``ordered`` (sorted) by the nearest-rank method: the
    smallest value with at least ``percent`` % of the values at or below it."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


class Metrics:
    """Every version's ``VersionMetrics``, made on first use."""

    def __init__(self, window: float, *, clock: Clock = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], VersionMetrics] = {}

    def for_version(self, deployment: str, version: str) -> VersionMetrics:
        key = (deployment, version)
        found = self._versions.get(key)  # without the lock: the common case, a dict read
        if found is None:
            with self._lock:
                found = self._versions.setdefault(
                    key, VersionMetrics(self.window, clock=self._clock)
                )
        return found

    def snapshot(self, deployment: str, now: float | None = None) -> dict[str, VersionSummary]:
        """``{version: summary}`` of every version of ``deployment`` that has metrics."""
        with self._lock:
            versions = [(v, m) for (d, v), m in self._versions.items() if d == deployment]
        return {version: metrics.summary(now) for version, metrics in versions}

    def reset(self, deployment: str, version: str) -> None:
        """Start ``version``'s counts over (a canary deployed again starts clean)."""
        self.for_version(deployment, version).reset()

    def forget(self, deployment: str) -> None:
        """Drop the metrics of every version of ``deployment`` (it was removed)."""
        with self._lock:
            for key in [key for key in self._versions if key[0] == deployment]:
                del self._versions[key]


def judge_canary(
    route: Route, metrics: Metrics, *, min_requests: int, now: float | None = None
) -> str | None:
    """Why the canary should be rolled back, in plain words, or None.

    A canary is judged only once it has answered ``min_requests`` requests in the window:
    with fewer, one slow or failed request says little.
    """
    if route.canary_version is None:
        return None
    summary = metrics.for_version(route.deployment, route.canary_version).summary(now)
    if summary["requests"] < min_requests:
        return None
    reasons = []
    canary = f"canary v{route.canary_version}"
    rate = summary["error_rate"]
    if route.max_error_rate is not None and rate > route.max_error_rate:
        shown, allowed = _distinct(rate * 100, route.max_error_rate * 100, decimals=1)
        reasons.append(
            f"{canary} error rate {shown}% over {summary['requests']} requests is above the "
            f"{allowed}% allowed"
        )
    p99 = summary["p99_ms"]
    if route.max_p99_ms is not None and p99 is not None and p99 > route.max_p99_ms:
        shown, allowed = _distinct(p99, route.max_p99_ms, decimals=0)
        reasons.append(f"{canary} p99 {shown} ms is above the {allowed} ms allowed")
    return "; ".join(reasons) or None


def _distinct(value: float, limit: float, *, decimals: int) -> tuple[str, str]:
    """``value`` and ``limit`` with ``decimals`` decimals, or more when those show them
    equal (2.04 % is above 2 %: not "2.0% is above the 2.0%")."""
    for places in range(decimals, decimals + 4):
        shown, allowed = f"{value:.{places}f}", f"{limit:.{places}f}"
        if shown != allowed:
            break
    return shown, allowed


# Forwarding --------------------------------------------------------------------------------


class Forwarded(NamedTuple):
    """A model server's answer (or the router's, when the server could not be reached)."""

    version: str
    status: int
    headers: dict[str, str]
    body: bytes
    latency_ms: float


class Forwarder:
    """Sends requests to model servers' ``/invocations`` over one pool of keep-alive
    connections and records each answer in ``metrics``.

    A 5xx answer, a refused connection or a timeout counts as the version's error; a 4xx
    does not (the request was wrong, not the model). Bodies pass through unparsed. Use
    one from one event loop (the portal's): its connections belong to the loop of its first
    request.

    The pool is aiohttp's: its C parser and plain asyncio sockets cost a third of httpx's
    time a request (0.7 ms less at p50 against the same model server here), and the router
    is on the path of every prediction.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        timeout: float = FORWARD_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.metrics = metrics
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=timeout, sock_connect=min(timeout, CONNECT_TIMEOUT)
        )
        self._session: aiohttp.ClientSession | None = None
        self._targets: dict[str, str] = {}

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on the event loop, where its connections live
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=KEEPALIVE_SECONDS
                ),
                timeout=self._timeout,
                # No compression asked for: the body and its content type pass on as they are.
                skip_auto_headers=("Accept-Encoding", "User-Agent"),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def forward(
        self, route: Route, body: bytes, content_type: str | None, *, draw: float | None = None
    ) -> Forwarded:
        """Send the request to the version ``choose_version(route, draw)`` picks."""
        version, url = choose_version(route, draw)
        return await self.forward_to(route.deployment, version, url, body, content_type)

    async def forward_to(
        self, deployment: str, version: str, url: str, body: bytes, content_type: str | None
    ) -> Forwarded:
        """Send the request to ``version``'s server at ``url``."""
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = url.rstrip("/") + "/invocations"
        headers = {"Content-Type": content_type} if content_type else None
        pool = self._pool()
        started = time.perf_counter()
        try:
            async with pool.post(target, data=body, headers=headers) as response:
                content = await response.read()
        except TimeoutError:
            latency_ms = (time.perf_counter() - started) * 1000
            detail = f"the model server of {deployment} v{version} did not answer in time"
            return self._failed(
                deployment, version, 504, "Model server timeout", detail, latency_ms
            )
        except aiohttp.ClientConnectorError:
            latency_ms = (time.perf_counter() - started) * 1000
            detail = f"the model server of {deployment} v{version} at {url} is down"
            return self._failed(deployment, version, 503, "Model server down", detail, latency_ms)
        except aiohttp.ClientError as exc:
            latency_ms = (time.perf_counter() - started) * 1000
            detail = f"the model server of {deployment} v{version} broke off: {exc}"
            return self._failed(deployment, version, 502, "Model server error", detail, latency_ms)
        latency_ms = (time.perf_counter() - started) * 1000
        status = response.status
        self.metrics.for_version(deployment, version).record(latency_ms, status >= 500)
        passed = {
            name: response.headers[name] for name in PASSED_HEADERS if name in response.headers
        }
        return Forwarded(version, status, passed, content, latency_ms)

    def _failed(
        self, deployment: str, version: str, status: int, title: str, detail: str, latency_ms: float
    ) -> Forwarded:
        self.metrics.for_version(deployment, version).record(latency_ms, True)
        problem = {
            "type": "urn:paved:problem:unavailable",
            "title": title,
            "status": status,
            "detail": detail,
            "deployment": deployment,
            "version": version,
        }
        headers = {"content-type": PROBLEM_MEDIA_TYPE}
        return Forwarded(version, status, headers, json.dumps(problem).encode(), latency_ms)

    async def aclose(self) -> None:
        """Close the pool's connections (at the portal's shutdown)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Forwarder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
