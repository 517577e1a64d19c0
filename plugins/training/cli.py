"""``paved train PROJECT``: start a training job on a running portal and follow it."""

from __future__ import annotations

import click

from portal.remote import EXIT_FAILED, Remote, RemoteError, follow_until_done


def _parameter(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, given = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r}: expected NAME=VALUE, e.g. seed=7")
        parsed[name] = given
    return parsed


@click.command("train")
@click.argument("project")
@click.option(
    "--param", "-p", "parameters", multiple=True, callback=_parameter,
    help="A parameter over the project's default, NAME=VALUE; repeat for several.",
)  # fmt: skip
@click.option("--backend", help="Where to run: local, kubernetes.  [default: the project's]")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the job to its end."
)
def train(project: str, parameters: dict[str, str], backend: str | None, wait: bool) -> None:
    """Train PROJECT (component:<namespace>/<name>, or its Model) on the portal at PAVED_URL.

    Prints the job's log as it runs and exits 0 when it succeeds, 1 when it fails or is
    cancelled, 2 on bad input, 3 when not allowed, 4 when the portal cannot be reached.
    """
    remote = Remote.from_environment()
    body = {"project": project, "parameters": parameters, "backend": backend}
    job = remote.post("/api/training/jobs", json=body)
    click.echo(f"job {job['id']} queued: {remote.url}/training/jobs/{job['id']}", err=True)
    if not wait:
        click.echo(job["id"])
        return
    path = f"/api/training/jobs/{job['id']}"
    state = follow_until_done(remote, path, f"{path}/log", lambda line: click.echo(line["message"]))
    if state["status"] != "succeeded":
        raise RemoteError(
            f"job {job['id']} {state['status']}: {state.get('error') or ''}", EXIT_FAILED
        )
    link = state.get("mlflow_run_url") or state.get("mlflow_run_id")
    click.echo(f"job {job['id']} succeeded; MLflow run {link}", err=True)
