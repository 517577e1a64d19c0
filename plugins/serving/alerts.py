"""A deployment's alerts: what needs a look, in plain words, from its drift and from the
stable version's figures in the router's window."""

from __future__ import annotations

from plugins.serving.models import DeploymentOut, DriftOut


def find_alerts(
    deployment: DeploymentOut, drift: list[DriftOut], *, min_requests: int, window: float
) -> list[str]:
    """What needs a look, in plain words: each feature drifting past its threshold, and the
    stable version's error rate or p99 past the thresholds of the project's monitoring.

    The figures count once the stable version has answered ``min_requests`` requests in the
    window, as for the canary's judge: with fewer, one slow or failed request says little.
    """
    alerts = [
        f"Drift: {found.feature} has a PSI of {found.psi:.2f} over {found.observed} observed "
        f"values, above the threshold {found.threshold:g}."
        for found in drift
        if found.alert and found.psi is not None
    ]
    monitoring = deployment.monitoring or {}
    stable = deployment.metrics.get(deployment.stable_version or "")
    if not monitoring.get("enabled") or stable is None or stable.requests < min_requests:
        return alerts
    seconds = f"{window:g} s"
    max_error_rate = monitoring.get("maxErrorRate")
    if max_error_rate is not None and stable.error_rate > float(max_error_rate):
        alerts.append(
            f"Errors: v{deployment.stable_version} failed {stable.error_rate * 100:.1f}% of "
            f"{stable.requests} requests in the last {seconds}; monitoring allows "
            f"{float(max_error_rate) * 100:g}%."
        )
    max_p99_ms = monitoring.get("maxP99Ms")
    if max_p99_ms is not None and stable.p99_ms is not None and stable.p99_ms > float(max_p99_ms):
        alerts.append(
            f"Latency: v{deployment.stable_version} answered with a p99 of {stable.p99_ms:.0f} ms "
            f"in the last {seconds}; monitoring allows {float(max_p99_ms):g} ms."
        )
    return alerts
