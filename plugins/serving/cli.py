"""``paved deploy``, ``paved rollback``, ``paved status`` and ``paved logs``: serving from a
terminal or a CI job, through the REST API of the portal at ``PAVED_URL``.

Exit codes: 0 done, 1 the deploy failed, 2 bad input, 3 not allowed, 4 the portal cannot be
reached.
"""

from __future__ import annotations

import time
from typing import Any

import click

from portal.remote import EXIT_FAILED, FINISHED, Remote, RemoteError, follow_log, follow_until_done


@click.command("deploy")
@click.argument("model")
@click.option("--version", "-v", "version", required=True, help="The registered version.")
@click.option("--env", "environment", required=True, help="staging, production...")
@click.option(
    "--canary", type=click.IntRange(1, 100), help="Serve it as a canary with this % of traffic."
)
@click.option("--name", help="Deployment name.  [default: MODEL-ENV]")
@click.option("--runtime", help="local, kubernetes...  [default: the project's]")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the deploy to its end."
)
def deploy(
    model: str,
    version: str,
    environment: str,
    canary: int | None,
    name: str | None,
    runtime: str | None,
    wait: bool,
) -> None:
    """Deploy version --version of MODEL to --env, as a canary with --canary.

    Prints the deploy's log while the new version starts; the previous version serves until
    it answers. Exits 0 once it serves, 1 when it did not come up.
    """
    remote = Remote.from_environment()
    body: dict[str, Any] = {"model": model, "version": version, "environment": environment}
    body |= {
        k: v for k, v in (("canary_percent", canary), ("name", name), ("runtime", runtime)) if v
    }
    deployment = remote.post("/api/serving/deployments", json=body)
    shown = deployment["name"]
    click.echo(f"deploying {model} v{version} to {shown} (task {deployment['task_id']})", err=True)
    if not wait:
        click.echo(shown)
        return
    task = _follow(remote, shown, int(deployment["task_id"]))
    found = remote.get(f"/api/serving/deployments/{shown}")
    if task["status"] != "succeeded":
        raise RemoteError(f"{shown}: {found['message'] or task.get('error')}", EXIT_FAILED)
    click.echo(f"{shown}: {found['message']}", err=True)
    click.echo(found["url"])


def _follow(remote: Remote, name: str, task_id: int) -> dict[str, Any]:
    """Print the task's log as it comes, with the seconds since the start; return the task."""
    started = time.monotonic()

    def echo(line: dict[str, Any]) -> None:
        click.echo(f"[{time.monotonic() - started:5.1f}s] {line['message']}", err=True)

    path = f"/api/tasks/{task_id}"
    return follow_until_done(remote, path, f"{path}/log", echo)


@click.command("rollback")
@click.argument("deployment")
def rollback(deployment: str) -> None:
    """Send DEPLOYMENT's traffic back at once: off its canary, or to the version before its
    last promotion."""
    remote = Remote.from_environment()
    found = remote.post(f"/api/serving/deployments/{deployment}/rollback")
    click.echo(f"{deployment}: {found['message']}")


@click.command("status")
@click.argument("deployment", required=False)
def status(deployment: str | None) -> None:
    """Deployments and what serves them, or one DEPLOYMENT with its figures and history."""
    remote = Remote.from_environment()
    if deployment is None:
        found = remote.get("/api/serving/deployments")
        if not found:
            click.echo("no deployments")
            return
        click.echo(f"{'NAME':<32} {'ENV':<12} {'STABLE':<7} {'CANARY':<12} STATUS")
        for item in found:
            click.echo(
                f"{item['name']:<32} {item['environment']:<12} "
                f"{_version(item['stable_version']):<7} {_canary(item):<12} {item['status']}"
            )
        return
    item = remote.get(f"/api/serving/deployments/{deployment}")
    click.echo(f"{item['name']}: {item['model']} in {item['environment']} on {item['runtime']}")
    click.echo(f"  status   {item['status']}: {item['message']}")
    click.echo(f"  stable   {_version(item['stable_version'])}")
    click.echo(f"  canary   {_canary(item)}")
    click.echo(f"  url      {item['url']}")
    for alert in item["alerts"]:
        click.secho(f"  ! {alert}", fg="yellow")
    for version, figures in sorted(item["metrics"].items()):
        p50, p99 = _ms(figures["p50_ms"]), _ms(figures["p99_ms"])
        click.echo(
            f"  v{version:<7} {figures['requests']} requests, {figures['error_rate']:.1%} errors, "
            f"p50 {p50}, p99 {p99}"
        )
    for event in item["events"][:10]:
        click.echo(
            f"  {event['at'][:19]}  {event['kind']:<9} {event['message']}  ({event['actor']})"
        )


@click.command("logs")
@click.argument("target")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines until the work ends.")
def logs(target: str, follow: bool) -> None:
    """The log of a deployment's latest task, or of a training job (TARGET is its number)."""
    remote = Remote.from_environment()
    if target.isdigit():
        path = f"/api/training/jobs/{target}"
        task_id = int(remote.get(path)["task_id"])
    else:
        task_id = remote.get(f"/api/serving/deployments/{target}")["task_id"]
        if task_id is None:
            click.echo(f"{target} has no task log yet", err=True)
            return
    if not follow:
        for line in remote.get(f"/api/tasks/{task_id}/log"):
            click.echo(line["message"])
        return

    def is_finished() -> bool:
        return remote.get(f"/api/tasks/{task_id}")["status"] in FINISHED

    for line in follow_log(remote, f"/api/tasks/{task_id}/log", is_finished=is_finished):
        click.echo(line["message"])


def _version(version: str | None) -> str:
    return f"v{version}" if version else "-"


def _canary(item: dict[str, Any]) -> str:
    if item.get("canary_version"):
        return f"v{item['canary_version']} {item['canary_percent']}%"
    return "-"


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"
