"""Request counts, errors and latencies, recorded in the process and written out in
Prometheus' text format (https://prometheus.io/docs/instrumenting/exposition_formats/)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Sequence

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.99)
# Percentiles are over each route's latest requests: memory stays bounded, and a slower
# model version shows within minutes instead of being diluted by every request since start.
WINDOW = 1000
# What the text format escapes in a label value: backslash, double quote and line feed.
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


class Recorder:
    """Counts requests by route and status, and keeps each route's recent latencies.

    Only the event loop calls it (the middleware, and the /metrics route, which is async),
    so it needs no lock.
    """

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.answered: Counter[tuple[str, int]] = Counter()  # by route and status
        self.failed: Counter[str] = Counter()  # server errors (5xx), by route
        self.requests: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.latest: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def record(self, route: str, status: int, seconds: float) -> None:
        self.answered[route, status] += 1
        self.failed[route] += int(status >= 500)
        self.requests[route] += 1
        self.seconds[route] += seconds
        self.latest[route].append(seconds)

    def prometheus_text(self) -> str:
        """Requests by route and status, server errors by route, and each route's latency
        as a summary: p50 and p99 of its latest requests, with the all-time sum and count."""
        routes = sorted(self.requests)
        lines = _header("http_requests_total", "counter", "HTTP requests answered.")
        for (route, status), count in sorted(self.answered.items()):
            lines.append(f"http_requests_total{_labels(route=route, status=status)} {count}")
        lines += _header("http_request_errors_total", "counter", "HTTP requests answered 5xx.")
        for route in routes:
            lines.append(f"http_request_errors_total{_labels(route=route)} {self.failed[route]}")
        lines += _header(
            "http_request_duration_seconds",
            "summary",
            f"Time to answer; quantiles over each route's latest {self.window} requests.",
        )
        for route in routes:
            ordered = sorted(self.latest[route])
            for q in QUANTILES:
                quantile = _labels(route=route, quantile=q)
                lines.append(f"http_request_duration_seconds{quantile} {percentile(ordered, q)}")
            total = _labels(route=route)
            lines.append(f"http_request_duration_seconds_sum{total} {self.seconds[route]}")
            lines.append(f"http_request_duration_seconds_count{total} {self.requests[route]}")
        return "\n".join(lines) + "\n"


def gauge(name: str, help_text: str, value: float) -> str:
    """One gauge without labels, in Prometheus' text format."""
    return "\n".join([*_header(name, "gauge", help_text), f"{name} {value}"]) + "\n"


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0 to 1) of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labels(**labels: object) -> str:
    """``{name="value",...}``, with the values escaped as the text format requires."""
    pairs = (f'{name}="{str(value).translate(_LABEL_ESCAPES)}"' for name, value in labels.items())
    return "{" + ",".join(pairs) + "}"
