"""``paved evidence``: export a period's signed evidence pack from a running portal, and
verify a pack offline with nothing but the file and the portal's public key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from plugins.soc2.pack import verify_pack
from plugins.soc2.signing import load_public_key
from portal.cli import progress, say
from portal.remote import EXIT_FAILED, Remote, RemoteError, follow_until_done

DAY = click.DateTime(formats=["%Y-%m-%d"])
EXIT_BROKEN = 1


@click.group("evidence")
def evidence() -> None:
    """SOC 2 evidence packs: export on the portal at PAVED_URL, verify offline."""


@evidence.command("export")
@click.option("--from", "start", type=DAY, required=True, help="First day of the period.")
@click.option("--to", "end", type=DAY, required=True, help="Last day of the period, included.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write the pack (a .zip).",
)
def export(start: datetime, end: datetime, output: Path) -> None:
    """Export the evidence of a period as a signed pack and download it (auditors and
    admins)."""
    remote = Remote.from_environment()
    body = {"from": start.date().isoformat(), "to": end.date().isoformat()}
    asked = remote.post("/api/soc2/exports", json=body)
    say(f"export {asked['id']} queued: {remote.url}/soc2")
    path = f"/api/tasks/{asked['task_id']}"
    state = follow_until_done(
        remote, path, f"{path}/log", lambda line: click.echo(line["message"], err=True)
    )
    if state["status"] != "succeeded":
        raise RemoteError(
            f"export {asked['id']} {state['status']}: {state.get('error') or ''}", EXIT_FAILED
        )
    done = remote.get(f"/api/soc2/exports/{asked['id']}")
    size = remote.download(done["download"], output)
    say(f"{output} written: {size:,} bytes, SHA-256 {done['sha256']}", mark="✓", colour="green")


@evidence.command("public-key")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write the key (PEM).",
)
def public_key(output: Path) -> None:
    """Download the public key that verifies this portal's packs."""
    remote = Remote.from_environment()
    output.write_text(remote.text("/api/soc2/public-key"))
    say(f"{output} written", mark="✓", colour="green")


@evidence.command("verify")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The portal's public key (GET /api/soc2/public-key).",
)
def verify(pack: Path, key_file: Path) -> None:
    """Check a pack offline: the manifest's signature, every file's SHA-256, and that the
    audit events are one unbroken chain. Exits 1 naming each file that does not fit."""
    try:
        key = load_public_key(key_file.read_bytes(), str(key_file))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-key") from None
    with progress(f"Verifying {pack.name}…") as status:
        check = verify_pack(
            pack,
            key,
            on_progress=lambda name, done, total: status.update(
                f"Verifying {pack.name}… {done} of {total} files {name}"
            ),
        )
    if check.is_intact:
        period = (check.manifest or {}).get("period", {})
        say(
            f"{pack.name} is intact: signature valid, {check.files} files match the manifest, "
            f"{check.events:,} audit events form an unbroken chain "
            f"({period.get('from')} to {period.get('to')})",
            mark="✓",
            colour="green",
        )
        return
    for problem in check.problems:
        say(problem, mark="✗", colour="red")
    raise SystemExit(EXIT_BROKEN)
