"""Evidence packs: one zip per period with every collector's evidence as JSON and CSV, the
audit chain segment, a readable ``index.html``, and ``manifest.json`` (each file's SHA-256)
with its detached Ed25519 signature; and the offline check of all of it.

A pack holds::

    manifest.json          what the pack is, every other file's SHA-256 and size
    manifest.json.sig      base64 Ed25519 signature over manifest.json's bytes
    index.html             the controls, their status and evidence, for people
    controls.json|.csv     each control, its status and the evidence that shows it
    evidence/<name>.json   one collector's rows, summary and exceptions
    evidence/<name>.csv    the same rows, for a spreadsheet
    audit/events.jsonl     the period's audit events, hashes included, oldest first
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jinja2 import Environment, FileSystemLoader, select_autoescape

from plugins.soc2.controls import (
    ATTENTION,
    CONTROLS,
    FAILED,
    STATUS_TEXT,
    SUPPORTED,
    control_status,
)
from plugins.soc2.signing import fingerprint, is_signed_by, sign
from portal.audit import hashed_fields, record_digest
from portal.evidence import Evidence, EvidenceCollector
from portal.models import AuditEvent

FORMAT = "paved-evidence-pack/1"
MANIFEST, SIGNATURE, EVENTS = "manifest.json", "manifest.json.sig", "audit/events.jsonl"
TEMPLATES = Path(__file__).parent / "templates"
ROWS_IN_INDEX = 200  # index.html shows this many rows of each evidence; the files hold all
CHUNK = 1 << 20


@dataclass(frozen=True)
class Gathered:
    """One collector's evidence for a pack, or the error that kept it from being gathered."""

    collector: EvidenceCollector
    evidence: Evidence | None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.evidence is None:
            return FAILED
        return ATTENTION if self.evidence.exceptions else SUPPORTED


@dataclass(frozen=True)
class ControlResult:
    id: str
    title: str
    criterion: str
    shown_by: str
    status: str
    evidence: list[str]
    exceptions: int

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]


def control_results(gathered: list[Gathered]) -> list[ControlResult]:
    """Each control of the map, and any other one a collector names, with its status."""
    known = {control.id: control for control in CONTROLS}
    named = [c for g in gathered for c in g.collector.controls if c not in known]
    results = []
    for control_id in [*known, *sorted(set(named))]:
        showing = [g for g in gathered if control_id in g.collector.controls]
        control = known.get(control_id)
        results.append(
            ControlResult(
                id=control_id,
                title=control.title if control else control_id,
                criterion=control.criterion if control else "",
                shown_by=control.shown_by if control else "",
                status=control_status([g.status for g in showing]),
                evidence=[g.collector.name for g in showing],
                exceptions=sum(len(g.evidence.exceptions) for g in showing if g.evidence),
            )
        )
    return results


@dataclass(frozen=True)
class WrittenPack:
    path: Path
    bytes: int
    sha256: str
    manifest_sha256: str
    events: int
    controls: list[ControlResult]


class _HashingWriter:
    """Writes one zip member while counting and hashing what goes in."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.size, self.hash = handle, 0, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.size += len(data)
        self.hash.update(data)


class _PackWriter:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.files: list[dict[str, Any]] = []

    def add(self, name: str, chunks: Iterable[bytes]) -> None:
        with self.archive.open(name, "w") as member:
            writer = _HashingWriter(member)
            for chunk in chunks:
                writer.write(chunk)
        self.files.append({"path": name, "sha256": writer.hash.hexdigest(), "bytes": writer.size})


def write_pack(
    target: Path,
    *,
    header: dict[str, Any],
    gathered: list[Gathered],
    events: Iterable[AuditEvent],
    key: Ed25519PrivateKey,
    on_event: Callable[[int], None] | None = None,
) -> WrittenPack:
    """Write the pack to ``target``, through a temporary file renamed at the end, so a
    pack is either whole or absent (a full disk leaves nothing behind)."""
    controls = control_results(gathered)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            pack = _PackWriter(archive)
            chain = _ChainSegment()
            pack.add(EVENTS, chain.lines(events, on_event))
            for item in gathered:
                name = item.collector.name
                pack.add(f"evidence/{name}.json", [_json(evidence_document(item, header))])
                pack.add(f"evidence/{name}.csv", [_csv(item)])
            pack.add("controls.json", [_json([_control_document(c) for c in controls])])
            pack.add("controls.csv", [_controls_csv(controls)])
            manifest_files = sorted(pack.files, key=lambda f: f["path"])
            index = _render_index(header, controls, gathered, chain.summary(), manifest_files)
            pack.add("index.html", [index.encode()])
            manifest = {
                "format": FORMAT,
                **header,
                "signing_key": {
                    "algorithm": "Ed25519",
                    "fingerprint": fingerprint(key.public_key()),
                },
                "controls": [
                    {"id": c.id, "status": c.status, "evidence": c.evidence} for c in controls
                ],
                "audit_chain": chain.summary(),
                "files": sorted(pack.files, key=lambda f: f["path"]),
            }
            manifest_bytes = _json(manifest)
            archive.writestr(MANIFEST, manifest_bytes)
            archive.writestr(SIGNATURE, sign(key, manifest_bytes))
        digest, size = _file_digest(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return WrittenPack(
        path=target,
        bytes=size,
        sha256=digest,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        events=chain.count,
        controls=controls,
    )


class _ChainSegment:
    """The audit events written into a pack, and the ends of the chain they form."""

    def __init__(self) -> None:
        self.count = 0
        self.first_id: int | None = None
        self.last_id: int | None = None
        self.prev_hash: str | None = None
        self.last_hash: str | None = None

    def lines(
        self, events: Iterable[AuditEvent], on_event: Callable[[int], None] | None
    ) -> Iterator[bytes]:
        buffer: list[bytes] = []
        for event in events:
            if self.first_id is None:
                self.first_id, self.prev_hash = event.id, event.prev_hash
            self.last_id, self.last_hash = event.id, event.hash
            record = hashed_fields(event)
            record["hash"] = event.hash
            buffer.append(_line(record))
            self.count += 1
            if len(buffer) == 1000:
                yield b"".join(buffer)
                buffer.clear()
                if on_event is not None:
                    on_event(self.count)
        if buffer:
            yield b"".join(buffer)
        if on_event is not None:
            on_event(self.count)

    def summary(self) -> dict[str, Any]:
        return {
            "file": EVENTS,
            "events": self.count,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "prev_hash": self.prev_hash,
            "last_hash": self.last_hash,
        }


def _line(record: dict[str, Any]) -> bytes:
    return (
        json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False).encode() + b"\n"


def evidence_document(item: Gathered, header: dict[str, Any]) -> dict[str, Any]:
    collector, evidence = item.collector, item.evidence
    return {
        "collector": collector.name,
        "title": collector.title,
        "description": collector.description,
        "controls": list(collector.controls),
        "period": header["period"],
        "status": item.status,
        "error": item.error,
        "summary": evidence.summary if evidence else {},
        "exceptions": list(evidence.exceptions) if evidence else [],
        "columns": list(evidence.columns) if evidence else [],
        "rows": list(evidence.rows) if evidence else [],
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "; ".join(_cell(part) for part in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _csv(item: Gathered) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if item.evidence is None:
        writer.writerow(["error"])
        writer.writerow([item.error or ""])
        return out.getvalue().encode()
    columns = list(item.evidence.columns)
    writer.writerow(columns)
    for row in item.evidence.rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    return out.getvalue().encode()


def _control_document(control: ControlResult) -> dict[str, Any]:
    return {
        "id": control.id,
        "title": control.title,
        "criterion": control.criterion,
        "shown_by": control.shown_by,
        "status": control.status,
        "evidence": control.evidence,
        "exceptions": control.exceptions,
    }


def _controls_csv(controls: list[ControlResult]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["control", "title", "status", "evidence", "exceptions"])
    for control in controls:
        writer.writerow(
            [
                control.id,
                control.title,
                control.status,
                "; ".join(control.evidence),
                control.exceptions,
            ]
        )
    return out.getvalue().encode()


def _render_index(
    header: dict[str, Any],
    controls: list[ControlResult],
    gathered: list[Gathered],
    chain: dict[str, Any],
    files: list[dict[str, Any]],
) -> str:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    environment.filters["cell"] = _cell
    template = environment.get_template("soc2/pack-index.html")
    return template.render(
        header=header,
        controls=controls,
        gathered=gathered,
        chain=chain,
        files=files,
        rows_shown=ROWS_IN_INDEX,
    )


def _file_digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# -- Verifying a pack, offline ------------------------------------------------------------


@dataclass
class PackCheck:
    """What ``verify_pack`` found: every problem (none means the pack is intact)."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    events: int = 0
    manifest: dict[str, Any] | None = None

    @property
    def is_intact(self) -> bool:
        return not self.problems


def verify_pack(
    path: Path,
    public_key: Ed25519PublicKey,
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> PackCheck:
    """Check a pack with nothing but its file and the public key: the manifest's
    signature, every file's SHA-256 (naming each file that changed, is missing or was
    added), and that the audit events form one unbroken chain from the manifest's
    ``prev_hash`` to its ``last_hash``."""
    check = PackCheck()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        check.problems.append(f"{path.name}: not a readable zip archive ({exc})")
        return check
    with archive:
        manifest_bytes = _member(archive, MANIFEST, check)
        signature = _member(archive, SIGNATURE, check)
        if manifest_bytes is None or signature is None:
            return check
        if not is_signed_by(public_key, manifest_bytes, signature):
            check.problems.append(
                f"{MANIFEST}: the signature does not match (the manifest or {SIGNATURE} was "
                "changed, or the pack was signed by another key)"
            )
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            check.problems.append(f"{MANIFEST}: not JSON ({exc})")
            return check
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            check.problems.append(f"{MANIFEST}: not a Paved evidence pack; expected {FORMAT}")
            return check
        files = manifest.get("files")
        if not isinstance(files, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("path"), str) for entry in files
        ):
            check.problems.append(f"{MANIFEST}: its files are not a list of {{path, sha256}}")
            return check
        check.manifest = manifest
        names = archive.namelist()
        # A zip may hold two members of one name; readers pick either, so one could be
        # forged behind the other.
        for twice in sorted({name for name in names if names.count(name) > 1}):
            check.problems.append(f"{twice}: in the pack more than once")
        listed = {entry["path"]: entry for entry in files}
        present = set(names) - {MANIFEST, SIGNATURE}
        for extra in sorted(present - set(listed)):
            check.problems.append(f"{extra}: in the pack but not in the manifest")
        for index, (name, entry) in enumerate(sorted(listed.items())):
            if on_progress is not None:
                on_progress(name, index, len(listed))
            if name not in present:
                check.problems.append(f"{name}: listed in the manifest but missing")
                continue
            found = _member_digest(archive, name, check)
            if found is None:
                continue
            digest, size = found
            if digest != entry.get("sha256") or size != entry.get("bytes"):
                check.problems.append(
                    f"{name}: changed (SHA-256 {digest[:16]}…, {size} bytes; the manifest says "
                    f"{str(entry.get('sha256'))[:16]}…, {entry.get('bytes')} bytes)"
                )
            check.files += 1
        chain = manifest.get("audit_chain") or {}
        if EVENTS in present:
            _verify_chain(archive, chain, check)
        if on_progress is not None:
            on_progress("", len(listed), len(listed))
    return check


def _member(archive: zipfile.ZipFile, name: str, check: PackCheck) -> bytes | None:
    try:
        return archive.read(name)
    except KeyError:
        check.problems.append(f"{name}: missing from the pack")
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        check.problems.append(f"{name}: cannot be read ({exc})")
    return None


def _member_digest(archive: zipfile.ZipFile, name: str, check: PackCheck) -> tuple[str, int] | None:
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as member:
            while chunk := member.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        check.problems.append(f"{name}: cannot be read ({exc})")
        return None
    return digest.hexdigest(), size


def _verify_chain(archive: zipfile.ZipFile, chain: dict[str, Any], check: PackCheck) -> None:
    """Each event's hash is recomputed, and each must follow the one before it."""
    expected_id, previous = chain.get("first_id"), chain.get("prev_hash")
    problem: str | None = None
    if not isinstance(expected_id, int):
        if chain.get("events"):
            check.problems.append(f"{MANIFEST}: its audit_chain names no first event")
            return
        expected_id = 0  # no events: any line found is one too many
    try:
        with archive.open(EVENTS) as member:
            for number, raw in enumerate(io.TextIOWrapper(member, encoding="utf-8"), start=1):
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    problem = f"line {number} is not an event (a JSON object)"
                    break
                if record.get("id") != expected_id:
                    problem = f"line {number} is event {record.get('id')}; expected {expected_id}"
                    break
                if record.get("prev_hash") != previous:
                    problem = f"event {expected_id} does not follow the event before it"
                    break
                if record_digest(record) != record.get("hash"):
                    problem = f"event {expected_id} was changed after it was written"
                    break
                previous, expected_id = record["hash"], expected_id + 1
                check.events += 1
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, UnicodeDecodeError) as exc:
        problem = f"cannot be read ({exc})"
    if problem is None and check.events != (chain.get("events") or 0):
        problem = f"holds {check.events} events; the manifest says {chain.get('events')}"
    if problem is None and check.events and previous != chain.get("last_hash"):
        problem = "the last event is not the one the manifest names"
    if problem is not None:
        check.problems.append(f"{EVENTS}: the audit chain is broken: {problem}")


def generated_at() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
