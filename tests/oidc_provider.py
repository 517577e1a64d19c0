"""Start the test OpenID Connect provider (tests/oidc/provider.mjs) from pytest.

The provider is a real `oidc-provider` (npm) instance on http://127.0.0.1:<port>
with one confidential client and the fixed accounts in ``ACCOUNTS``; see the
header of provider.mjs for its flags and behaviour. It needs Node.js and its
npm dependencies: ``npm ci --prefix tests/oidc``.

    from oidc_provider import start_provider

    with start_provider(redirect_uris=[...], post_logout_redirect_uri=...) as op:
        op.issuer  # "http://127.0.0.1:<port>", discovery at op.discovery_url
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
INSTALL_HINT = "run `npm ci --prefix tests/oidc`"
STARTUP_TIMEOUT = 20.0

# username -> groups; mirrors ACCOUNTS in tests/oidc/provider.mjs.
ACCOUNTS: dict[str, list[str]] = {
    "alice": ["ml-engineers", "team-fraud"],
    "bob": ["team-leads", "team-fraud"],
    "dana": ["data-scientists", "team-churn"],
    "audrey": ["auditors"],
    "root": ["platform-admins"],
}

# username -> (name, email); also mirrors provider.mjs.
ACCOUNT_PROFILES: dict[str, tuple[str, str]] = {
    username: (f"{username.capitalize()} Example", f"{username}@example.com")
    for username in ACCOUNTS
}


def password_for(username: str) -> str:
    """The password the test provider accepts for ``username``."""
    return f"{username}-password"


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


class OidcProviderError(RuntimeError):
    pass


def node_modules_installed() -> bool:
    return (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()


def _drain(
    stream: IO[str],
    sink: collections.deque[str],
    ready: list[str],
    ready_event: threading.Event | None,
) -> None:
    # Keeps reading so the child never blocks on a full pipe.
    for line in stream:
        line = line.rstrip("\n")
        if ready_event is not None and not ready and line.startswith("READY "):
            ready.append(line.removeprefix("READY ").strip())
            ready_event.set()
            continue
        sink.append(line)
    if ready_event is not None:
        ready_event.set()  # EOF: wake the waiter, which then sees the exit


@contextmanager
def start_provider(
    *,
    redirect_uris: list[str],
    post_logout_redirect_uri: str,
    client_id: str = "paved",
    client_secret: str = "paved-test-secret",
) -> Iterator[OidcProvider]:
    """Run the test provider for the duration of the ``with`` block.

    The port is chosen by the OS (``--port 0``) and read back from the
    provider's ``READY <issuer>`` line, so there is no free-port race.
    """
    node = shutil.which("node")
    if node is None:
        raise OidcProviderError("Node.js (`node`) is not on PATH; the test OIDC provider needs it")
    if not node_modules_installed():
        raise OidcProviderError(
            f"the test OIDC provider's npm dependencies are missing: {INSTALL_HINT}"
        )
    if not redirect_uris:
        raise ValueError("redirect_uris must not be empty")

    cmd = [
        node,
        str(PROVIDER_SCRIPT),
        "--port",
        "0",
        "--client-id",
        client_id,
        "--client-secret",
        client_secret,
    ]
    for uri in redirect_uris:
        cmd += ["--redirect-uri", uri]
    cmd += ["--post-logout-redirect-uri", post_logout_redirect_uri]

    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NODE_OPTIONS", None)
    proc = subprocess.Popen(
        cmd,
        cwd=OIDC_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
    )
    stdout_lines: collections.deque[str] = collections.deque(maxlen=200)
    stderr_lines: collections.deque[str] = collections.deque(maxlen=200)
    ready: list[str] = []
    ready_event = threading.Event()
    threads = [
        threading.Thread(
            target=_drain, args=(proc.stdout, stdout_lines, ready, ready_event), daemon=True
        ),
        threading.Thread(target=_drain, args=(proc.stderr, stderr_lines, [], None), daemon=True),
    ]
    for thread in threads:
        thread.start()

    def output() -> str:
        text = "\n".join([*stdout_lines, *stderr_lines]).strip()
        return text or "(no output)"

    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready and proc.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready_event.wait(timeout=min(0.2, remaining))
            if ready_event.is_set() and not ready:
                time.sleep(0.05)  # stdout closed: the process is about to exit
        if not ready:
            proc.poll()
            if proc.returncode is None:
                reason = f"did not print READY within {STARTUP_TIMEOUT:.0f} s"
            else:
                time.sleep(0.1)  # let the drain threads catch the last lines
                reason = f"exited with code {proc.returncode}"
            hint = "" if node_modules_installed() else f" ({INSTALL_HINT})"
            raise OidcProviderError(f"test OIDC provider {reason}{hint}; output:\n{output()}")
        yield OidcProvider(issuer=ready[0], client_id=client_id, client_secret=client_secret)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for thread in threads:
            thread.join(timeout=2)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
