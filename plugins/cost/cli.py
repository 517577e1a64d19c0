"""``paved cost``: report what teams, projects and models cost, and read usage again, on a
running portal."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from portal.remote import EXIT_FAILED, Remote, RemoteError, follow_until_done

DAY = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


@click.group("cost")
def cost() -> None:
    """Cost chargeback on the portal at PAVED_URL."""


@cost.command("report")
@click.option(
    "--group-by", type=click.Choice(["team", "project", "model"]), default="team", show_default=True
)
@click.option("--from", "start", type=DAY, help="First day.  [default: the 1st of this month]")
@click.option("--to", "end", type=DAY, help="Last day, included.  [default: today]")
@click.option(
    "--granularity", type=click.Choice(["day", "month"]), default="month", show_default=True
)
@click.option("--csv", "as_csv", is_flag=True, help="One CSV line per period, group and metric.")
def report(
    group_by: str, start: datetime | None, end: datetime | None, granularity: str, as_csv: bool
) -> None:
    """Print what each team (project, model) cost, largest first."""
    remote = Remote.from_environment()
    params = {
        "group_by": group_by,
        "granularity": granularity,
        "from": _day(start),
        "to": _day(end),
    }
    params = {name: value for name, value in params.items() if value}
    if as_csv:
        click.echo(remote.text("/api/cost/report", params={**params, "format": "csv"}), nl=False)
        return
    found = remote.get("/api/cost/report", params=params)
    currency = found["currency"]
    click.echo(f"{found['from']} to {found['to']}, by {group_by}, in {currency}")
    width = max([len(series["title"]) for series in found["series"]] + [5])
    for series in found["series"]:
        click.echo(f"  {series['title']:<{width}}  {series['total']:>12,.2f}")
    click.echo(f"  {'Total':<{width}}  {found['total']:>12,.2f}")


@cost.command("collect")
@click.option("--from", "start", type=DAY, required=True, help="First day.")
@click.option("--to", "end", type=DAY, help="Last day, included.  [default: today]")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the task to its end."
)
def collect(start: datetime, end: datetime | None, wait: bool) -> None:
    """Read every usage source again for a range of days (admins)."""
    remote = Remote.from_environment()
    body = {"from": _day(start), "to": _day(end) or datetime.now(UTC).date().isoformat()}
    task = remote.post("/api/cost/collections", json=body)
    click.echo(f"task {task['id']} queued: {remote.url}/tasks/{task['id']}", err=True)
    if not wait:
        return
    path = f"/api/tasks/{task['id']}"
    state = follow_until_done(remote, path, f"{path}/log", lambda line: click.echo(line["message"]))
    if state["status"] != "succeeded":
        raise RemoteError(
            f"task {task['id']} {state['status']}: {state.get('error') or ''}", EXIT_FAILED
        )
