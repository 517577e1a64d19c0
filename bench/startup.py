"""Time from `paved up` to `/readyz` answering 200, on a fresh and on an existing database.

Starts the real command in a subprocess (SQLite in a temporary folder), polls /readyz every
5 ms, and prints the median and worst of several runs. Target: under 2 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

TARGET_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def time_to_ready(data_dir: Path, *, timeout: float = 30.0) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "portal", "up", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PAVED_LOG_LEVEL": "warning"},
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None:
                raise RuntimeError(f"paved up exited with {process.returncode}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError("paved up did not become ready")
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        time_to_ready(Path(scratch) / "warmup")  # compiles .pyc files, warms the disk cache
        fresh = [time_to_ready(Path(scratch) / f"fresh-{n}") for n in range(args.runs)]
        existing_dir = Path(scratch) / "fresh-0"
        existing = [time_to_ready(existing_dir) for _ in range(args.runs)]
    print(f"paved up -> /readyz 200, {args.runs} runs each (target < {TARGET_SECONDS:.1f} s)")
    for label, times in (("fresh database", fresh), ("existing database", existing)):
        print(f"  {label:18} median {statistics.median(times):.2f} s   worst {max(times):.2f} s")
    worst = max(fresh + existing)
    print(f"{'PASS' if worst < TARGET_SECONDS else 'FAIL'}: worst {worst:.2f} s")
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
