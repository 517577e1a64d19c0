"""What a training backend is given and gives back: the contract of ``paved_training_backends``.

A backend runs one job to its end: it starts the project's entry point where it runs
(a subprocess here, a Kubernetes Job in a cluster), writes its output to the job's log as it
comes, stops it when the job is cancelled or runs out of time, and says how it ended.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portal.errors import InvalidInput

if TYPE_CHECKING:
    from portal import Settings, TaskContext

CPU = re.compile(r"^(?P<amount>[0-9]+(\.[0-9]+)?)(?P<milli>m?)$")
MEMORY = re.compile(r"^(?P<amount>[0-9]+)(?P<unit>Ki|Mi|Gi|Ti)?$")
MEMORY_UNITS = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
DEFAULT_RESOURCES = {"cpu": "1", "memory": "2Gi", "gpu": 0}


def parse_cpu(value: str, *, field: str = "resources.cpu") -> float:
    """CPUs as Kubernetes writes them: ``2``, ``1.5`` or ``500m``."""
    matched = CPU.match(str(value))
    if matched is None or float(matched["amount"]) == 0:
        raise InvalidInput.for_field(field, f"{value!r} is not a CPU amount", "e.g. 2, 1.5 or 500m")
    amount = float(matched["amount"])
    return amount / 1000 if matched["milli"] else amount


def parse_memory(value: str, *, field: str = "resources.memory") -> int:
    """Bytes from a Kubernetes quantity: ``512Mi``, ``2Gi``."""
    matched = MEMORY.match(str(value))
    if matched is None or int(matched["amount"]) == 0:
        raise InvalidInput.for_field(
            field, f"{value!r} is not a memory amount", "e.g. 512Mi or 2Gi"
        )
    return int(matched["amount"]) * MEMORY_UNITS[matched["unit"]]


@dataclass(frozen=True)
class Resources:
    """What a job asks for, as written in the project file (Kubernetes quantities)."""

    cpu: str = "1"
    memory: str = "2Gi"
    gpu: int = 0

    @classmethod
    def parse(cls, given: dict[str, Any] | None, *, field: str = "resources") -> Resources:
        merged = {**DEFAULT_RESOURCES, **(given or {})}
        resources = cls(str(merged["cpu"]), str(merged["memory"]), int(merged["gpu"]))
        parse_cpu(resources.cpu, field=f"{field}.cpu")
        parse_memory(resources.memory, field=f"{field}.memory")
        if resources.gpu < 0:
            raise InvalidInput.for_field(f"{field}.gpu", f"{resources.gpu} GPUs", "0 or more")
        return resources

    @property
    def cpus(self) -> float:
        return parse_cpu(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory)

    def as_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memory": self.memory, "gpu": self.gpu}


@dataclass(frozen=True)
class TrainingSpec:
    """One job, as a backend runs it."""

    job_id: int
    project: str  # the Component's entity ref
    owner: str  # the owning group's entity ref
    source: str  # a git repository (path or URL) or a folder
    revision: str | None  # the commit to check out; None for a folder
    command: list[str]  # the entry point with its parameters, run from the repository root
    env: dict[str, str]  # MLflow's variables (tracking URI, run id) and Paved's
    resources: Resources
    timeout_minutes: int
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def team(self) -> str:
        """The owning group's name (``fraud`` for ``group:default/fraud``)."""
        return self.owner.rsplit("/", 1)[-1].split(":")[-1]


@dataclass(frozen=True)
class TrainingOutcome:
    """How a job ended: the entry point's exit code, and what it used."""

    exit_code: int
    usage: dict[str, float] = field(default_factory=dict)
    message: str | None = None  # why it ended, when not by itself (timeout, evicted...)


@dataclass(frozen=True)
class TrainingBackend:
    """Somewhere jobs run. ``run(spec, ctx, settings)`` blocks until the job ends.

    ``ctx`` is the job's ``TaskContext``: ``ctx.log(line)`` for its output,
    ``ctx.is_cancel_requested()`` polled while it runs (then stop the job and raise
    ``TaskCancelled``). Raise ``TaskFailed`` with a line a person can act on when the job
    cannot start (a bad image, an API error).
    """

    name: str
    description: str
    run: Callable[[TrainingSpec, TaskContext, Settings], TrainingOutcome]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", self.name):
            raise ValueError(f"training backend name {self.name!r}: expected e.g. `local`")
