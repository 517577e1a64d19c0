"""What a serving runtime is given and gives back: the contract of ``paved_serving_runtimes``.

A runtime makes a deployment's desired state real: the stable version (and the canary
version, with its share of traffic) running and answering MLflow's scoring protocol. The
local runtime starts a model server process per version and lets Paved's router split the
traffic; the Kubernetes runtime applies manifests and, with KServe, lets KServe split it.

``apply`` and ``remove`` block until the runtime is done (the local runtime waits for each
new server to answer ``/ping``, up to ``serving.start_timeout``): call them from a task or a
thread, not on the event loop. The local runtime is ``plugins.serving.local`` (a
``LocalServers`` per portal process); the router that splits traffic between the URLs it
returns is ``plugins.serving.router``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portal import Settings


class RuntimeFailed(Exception):
    """A runtime could not make the state real (a server that would not start, an API
    error); the message says why in a line a person can act on. The previous state keeps
    serving."""


@dataclass(frozen=True)
class VersionSpec:
    """One model version to serve."""

    model: str  # the registered model's name in MLflow
    version: str
    model_uri: str  # the registry's URI, ``models:/name/3``: MLflow resolves it
    # Where the version's files are (MLflow's download URI: ``s3://…``, ``gs://…``,
    # ``file:…``), for a runtime that fetches them without MLflow (KServe).
    source: str = ""
    resources: dict[str, Any] = field(default_factory=dict)  # cpu, memory (quantities)
    replicas: dict[str, int] = field(default_factory=lambda: {"min": 1, "max": 1})

    @property
    def key(self) -> str:
        return f"{self.model}-v{self.version}"


@dataclass(frozen=True)
class DeploymentState:
    """What should be running for one deployment."""

    name: str  # unique: ``<model>-<environment>`` by default
    environment: str
    owner: str  # the owning group's entity ref
    stable: VersionSpec
    canary: VersionSpec | None = None
    canary_percent: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    # The stable version before the last promotion: a runtime that can keeps it running
    # (without traffic) so that rolling back is a switch of the router, not a start.
    previous: VersionSpec | None = None

    @property
    def team(self) -> str:
        return self.owner.rsplit("/", 1)[-1].split(":")[-1]

    @property
    def versions(self) -> list[VersionSpec]:
        """The versions that take traffic: stable, then the canary."""
        return [self.stable, *([self.canary] if self.canary else [])]

    @property
    def kept_warm(self) -> list[VersionSpec]:
        """The versions that take traffic, then the previous stable one if it is another."""
        served = self.versions
        previous = self.previous
        if previous is None or any(spec.version == previous.version for spec in served):
            return served
        return [*served, previous]


Log = Callable[[str], None]
# The endpoints' key of a runtime that splits the traffic itself: one URL for every version.
SPLIT_BY_RUNTIME = "*"


@dataclass(frozen=True)
class ServingRuntime:
    """Somewhere deployments run.

    ``apply(state, settings, log)`` brings the deployment to ``state`` and returns the
    URL each version answers at (``{"3": "http://127.0.0.1:8101"}``), or one URL under the
    key ``"*"`` when the runtime splits the traffic itself (``splits_traffic``). It raises
    ``RuntimeFailed`` when it cannot, leaving what ran before running. ``remove(name,
    settings, log)`` stops everything of a deployment.
    """

    name: str
    description: str
    apply: Callable[[DeploymentState, Settings, Log], dict[str, str]]
    remove: Callable[[str, Settings, Log], None]
    splits_traffic: bool = False
    # Whether its servers stop with the portal (local processes), so the portal brings them
    # back when it starts.
    restores: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", self.name):
            raise ValueError(f"serving runtime name {self.name!r}: expected e.g. `local`")
