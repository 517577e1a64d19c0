"""The local runner: a job's project checked out under the data directory and its entry
point run as a subprocess of this machine, with its memory, CPU time and wall time bounded."""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from plugins.training.backends import TrainingBackend, TrainingOutcome, TrainingSpec
from portal import Settings, TaskCancelled, TaskContext, TaskFailed

# Variables a project inherits from the portal's environment; nothing else (no secrets).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "VIRTUAL_ENV")
# Thread pools of numerical libraries: one thread per CPU asked for.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLL_SECONDS = 0.2
SECONDS_A_MINUTE = 60.0  # a job's timeout is in minutes
STOP_GRACE_SECONDS = 5.0
GIT_TIMEOUT = 120


def run_locally(spec: TrainingSpec, ctx: TaskContext, settings: Settings) -> TrainingOutcome:
    folder = settings.training_root / str(spec.job_id)
    shutil.rmtree(folder, ignore_errors=True)
    checkout(spec, folder, ctx)
    try:
        return _follow(spec, folder, ctx, settings)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checkout(spec: TrainingSpec, folder: Path, ctx: TaskContext) -> None:
    """Put the project's files at ``revision`` in ``folder``: a clone of a repository, or a
    copy of a plain folder."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    source = Path(spec.source)
    if spec.revision is None:
        ctx.log(f"copying {spec.source}")
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".git", "mlruns", "*.db"))
        return
    ctx.log(f"checking out {spec.source} at {spec.revision[:12]}")
    _git("clone", "--quiet", "--no-checkout", spec.source, str(folder))
    _git("-C", str(folder), "checkout", "--quiet", spec.revision)


def _git(*args: str) -> None:
    try:
        done = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TaskFailed(f"git {args[0]} did not finish within {GIT_TIMEOUT} s") from None
    if done.returncode != 0:
        raise TaskFailed(f"git {args[0]} failed: {done.stderr.strip()[:300]}")


def _command(spec: TrainingSpec, settings: Settings) -> list[str]:
    """The entry point, its ``python`` being the interpreter the settings name."""
    python = str(settings.training.python or sys.executable)
    head, *rest = spec.command
    return [python, *rest] if head in ("python", "python3") else spec.command


def _environment(spec: TrainingSpec, folder: Path, settings: Settings) -> dict[str, str]:
    threads = str(max(1, math.ceil(spec.resources.cpus)))
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env |= dict.fromkeys(THREAD_VARIABLES, threads)
    env |= {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(folder / "src"), str(folder)]),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    return env | spec.env


def _limits(spec: TrainingSpec) -> None:
    """In the child, before it runs: bound its address space and its CPU time."""
    memory = spec.resources.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu_seconds = math.ceil(spec.resources.cpus * spec.timeout_minutes * SECONDS_A_MINUTE)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _follow(
    spec: TrainingSpec, folder: Path, ctx: TaskContext, settings: Settings
) -> TrainingOutcome:
    command = _command(spec, settings)
    ctx.log("$ " + " ".join(command))
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=_environment(spec, folder, settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group, stopped as one
            preexec_fn=lambda: _limits(spec),
        )
    except OSError as exc:
        raise TaskFailed(f"the entry point {command[0]!r} could not start: {exc}") from None
    reader = threading.Thread(target=_forward, args=(process, ctx), daemon=True)
    reader.start()
    deadline = started + spec.timeout_minutes * SECONDS_A_MINUTE
    message = None
    try:
        while True:
            waited = os.wait4(process.pid, os.WNOHANG)
            if waited[0] == process.pid:
                status, usage = waited[1], waited[2]
                break
            if ctx.is_cancel_requested():
                _stop(process)
                process.returncode = os.waitstatus_to_exitcode(os.wait4(process.pid, 0)[1])
                raise TaskCancelled
            if time.monotonic() > deadline:
                message = f"stopped after its {spec.timeout_minutes} minutes"
                _stop(process)
                status, usage = os.wait4(process.pid, 0)[1:]
                break
            time.sleep(POLL_SECONDS)
    finally:
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    exit_code = process.returncode
    if exit_code < 0 and message is None:
        signal_name = signal.Signals(-exit_code).name
        hint = " (its CPU time limit)" if -exit_code == signal.SIGXCPU else ""
        message = f"killed by {signal_name}{hint}"
    return TrainingOutcome(
        exit_code=exit_code,
        usage={
            "seconds": round(time.monotonic() - started, 3),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "max_memory_bytes": float(usage.ru_maxrss * 1024),
            "gpu_seconds": 0.0,
        },
        message=message,
    )


def _forward(process: subprocess.Popen[str], ctx: TaskContext) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        ctx.log(line.rstrip("\n"))


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the job's process group, SIGKILL if it has not gone after a grace period."""
    for sent, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        until = time.monotonic() + wait
        while time.monotonic() < until:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return
            time.sleep(0.05)


LOCAL = TrainingBackend(
    name="local",
    description="A subprocess on the portal's machine, with memory and CPU time limits",
    run=run_locally,
)
