"""The CLI's side of the REST API: commands that act on a running portal (``paved train``,
``paved deploy``...) reach it at ``PAVED_URL`` with the API token in ``PAVED_TOKEN``.

Exit codes a CI job can use: 0 done, 1 the work failed (a job, a deployment), 2 bad input,
3 not signed in or denied, 4 the portal could not be reached or answered with an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx

URL_ENV = "PAVED_URL"
TOKEN_ENV = "PAVED_TOKEN"  # noqa: S105 (the variable's name, not a secret)
DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_FAILED, EXIT_INPUT, EXIT_DENIED, EXIT_UNREACHABLE = 1, 2, 3, 4


# The statuses of work that has ended.
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class RemoteError(click.ClickException):
    """A refusal or failure of the portal, told in its own words, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        vars(self)["exit_code"] = exit_code  # click exits with it; its class sets 1


class Remote:
    """A client of one portal's REST API, signed in with an API token."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["Accept"] = "application/json"
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @classmethod
    def from_environment(cls) -> Remote:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise RemoteError(
                f"{TOKEN_ENV} is not set; create a token on your account page (or with "
                "`paved token create`) and export it",
                EXIT_DENIED,
            )
        return cls(os.environ.get(URL_ENV, DEFAULT_URL), token)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON the portal answers; its refusals become a ``RemoteError``."""
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def text(self, path: str, **kwargs: Any) -> str:
        """What the portal answers a GET with, as text (a CSV export)."""
        return self._send("GET", path, **kwargs).text

    def download(self, path: str, target: Path) -> int:
        """Write what the portal answers a GET with to ``target`` (through a temporary
        file, so a broken transfer leaves nothing); returns the bytes written."""
        partial = target.with_name(f".{target.name}.partial")
        try:
            with self.http.stream("GET", path, headers={"Accept": "*/*"}) as response:
                if not response.is_success:
                    response.read()
                    raise RemoteError(_problem_text(response), _exit_code(response.status_code))
                size = 0
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        size += len(chunk)
            partial.replace(target)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"cannot reach Paved at {self.url} ({type(exc).__name__}); set {URL_ENV}",
                EXIT_UNREACHABLE,
            ) from None
        finally:
            partial.unlink(missing_ok=True)
        return size

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"cannot reach Paved at {self.url} ({type(exc).__name__}); set {URL_ENV}",
                EXIT_UNREACHABLE,
            ) from None
        if response.is_success:
            return response
        raise RemoteError(_problem_text(response), _exit_code(response.status_code))

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.call("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.call("PUT", path, **kwargs)


def _exit_code(status: int) -> int:
    if status in (401, 403):
        return EXIT_DENIED
    if status in (400, 404, 409, 422):
        return EXIT_INPUT
    return EXIT_UNREACHABLE


def _problem_text(response: httpx.Response) -> str:
    """The problem as a person reads it: its detail, each field's problem, the reasons."""
    try:
        body = response.json()
    except ValueError:
        return f"Paved answered {response.status_code}: {response.text[:300]}"
    if not isinstance(body, dict):
        return f"Paved answered {response.status_code}"
    lines = [str(body.get("detail") or body.get("title") or response.status_code)]
    for error in body.get("errors") or []:
        expected = f" (expected {error['expected']})" if error.get("expected") else ""
        lines.append(f"  {error.get('field')}: {error.get('message')}{expected}")
    for reason in body.get("reasons") or []:
        lines.append(f"  - {reason}")
    return "\n".join(lines)


def follow_log(
    remote: Remote, path: str, *, is_finished: Callable[[], bool], interval: float = 0.5
) -> Iterator[dict[str, Any]]:
    """Log lines of ``path`` (a ``.../log`` route paged with ``after``) as they come, until
    ``is_finished()`` says the work ended and every line is read."""
    after = 0
    while True:
        finished = is_finished()  # read before the lines, so the last ones are not missed
        lines = remote.get(f"{path}?after={after}")
        for line in lines:
            after = max(after, int(line["id"]))
            yield line
        if finished and not lines:
            return
        if not lines:
            time.sleep(interval)


def follow_until_done(
    remote: Remote, state_path: str, log_path: str, echo: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Hand each log line of some work (a task, a training job) to ``echo`` as it comes;
    return the work as ``state_path`` last showed it, once it ended."""
    state: dict[str, Any] = {}

    def is_finished() -> bool:
        state.update(remote.get(state_path))
        return state["status"] in FINISHED

    for line in follow_log(remote, log_path, is_finished=is_finished):
        echo(line)
    return state
