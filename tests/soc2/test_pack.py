"""Evidence packs: what one holds, and the offline check that names every file changed."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from plugins.soc2.cli import evidence
from plugins.soc2.pack import MANIFEST, SIGNATURE, verify_pack
from plugins.soc2.signing import public_pem, sign, signing_key
from portal.audit import append_alone, append_event
from portal.db import utcnow
from portal.models import AuditEvent
from portal.settings import Settings

from .conftest import Export
from conftest import BOTH_BACKENDS

TODAY = utcnow().date()


@pytest.fixture
def pack(engine: Engine, settings: Settings, export: Export) -> Path:
    """A pack of today, after a few events of different outcomes."""
    with Session(engine) as session:
        for outcome in ("succeeded", "denied", "failed"):
            append_event(
                session,
                actor="user:default/alice",
                action="catalog.entity.create",
                allowed=outcome != "denied",
                outcome=outcome,
            )
        session.commit()
    done = export(TODAY, TODAY)
    assert done.status == "succeeded", done.error
    return settings.evidence_dir / str(done.file_name)


@pytest.fixture
def key_file(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_text(public_pem(signing_key(settings).public_key()))
    return path


def _rewrite(pack: Path, target: Path, change: dict[str, bytes]) -> Path:
    """A copy of ``pack`` with some members' bytes replaced, the rest as they were."""
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            copy.writestr(name, change.get(name, source.read(name)))
    return target


@BOTH_BACKENDS
def test_a_pack_holds_every_collectors_evidence_the_chain_and_a_signed_manifest(
    backend: str, pack: Path, engine: Engine, settings: Settings
) -> None:
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read(MANIFEST))
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
        events = archive.read("audit/events.jsonl").decode().splitlines()
        people = json.loads(archive.read("evidence/access.people.json"))
        decisions = archive.read("evidence/policy.decisions.csv").decode()
        index = archive.read("index.html").decode()
    for name in (
        "access.people",
        "access.tokens",
        "access.reviews",
        "audit.chain",
        "policy.decisions",
        "policy.versions",
    ):
        assert {f"evidence/{name}.json", f"evidence/{name}.csv"} <= names
    assert {MANIFEST, SIGNATURE, "index.html", "controls.json", "controls.csv"} <= names
    assert {entry["path"] for entry in manifest["files"]} == names - {MANIFEST, SIGNATURE}
    with Session(engine) as session:
        written = session.scalar(select(func.count()).select_from(AuditEvent))
    chain = manifest["audit_chain"]
    # The export's own audit event is written after the pack, so it is not in it.
    assert chain["events"] == len(events) == written - 1
    assert json.loads(events[-1])["hash"] == chain["last_hash"]
    assert [c["id"] for c in manifest["controls"]][:6] == [
        "CC6.1",
        "CC6.2",
        "CC6.3",
        "CC7.2",
        "CC8.1",
        "C1.1",
    ]
    assert "user:default/alice" in [row["person"] for row in people["rows"]]
    assert "catalog.entity.create,1,1,1" in decisions.splitlines()
    assert "CC8.1" in index
    assert "Change management" in index
    check = verify_pack(pack, signing_key(settings).public_key())
    assert check.is_intact, check.problems
    assert check.events == len(events)
    assert check.files == len(manifest["files"])


def test_a_changed_byte_in_an_evidence_file_is_named(
    pack: Path, settings: Settings, tmp_path: Path
) -> None:
    with zipfile.ZipFile(pack) as archive:
        original = archive.read("evidence/access.people.csv")
    changed = original.replace(b"alice", b"alicf", 1)
    assert changed != original
    forged = _rewrite(pack, tmp_path / "forged.zip", {"evidence/access.people.csv": changed})
    check = verify_pack(forged, signing_key(settings).public_key())
    assert len(check.problems) == 1
    assert check.problems[0].startswith("evidence/access.people.csv: changed")


def test_a_forged_second_member_of_the_same_name_is_refused(
    pack: Path, settings: Settings, tmp_path: Path
) -> None:
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(forged, "w") as copy:
        copy.writestr("controls.csv", b"control,title,status\nCC6.1,forged,supported\n")
        for name in source.namelist():
            if name != "controls.csv":
                copy.writestr(name, source.read(name))
        with pytest.warns(UserWarning, match="Duplicate name: 'controls.csv'"):
            copy.writestr("controls.csv", source.read("controls.csv"))
    problems = verify_pack(forged, signing_key(settings).public_key()).problems
    assert "controls.csv: in the pack more than once" in problems


def test_a_line_that_is_not_an_event_is_named_not_a_crash(
    pack: Path, settings: Settings, tmp_path: Path
) -> None:
    with zipfile.ZipFile(pack) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    events = b"[1]\n"
    for entry in manifest["files"]:
        if entry["path"] == "audit/events.jsonl":
            entry.update(sha256=hashlib.sha256(events).hexdigest(), bytes=len(events))
    raw = json.dumps(manifest).encode()
    key = signing_key(settings)
    forged = _rewrite(
        pack,
        tmp_path / "forged.zip",
        {"audit/events.jsonl": events, MANIFEST: raw, SIGNATURE: sign(key, raw)},
    )
    assert verify_pack(forged, key.public_key()).problems == [
        "audit/events.jsonl: the audit chain is broken: line 1 is not an event (a JSON object)"
    ]


def test_a_changed_manifest_or_another_key_breaks_the_signature(
    pack: Path, settings: Settings, tmp_path: Path
) -> None:
    with zipfile.ZipFile(pack) as archive:
        manifest = archive.read(MANIFEST)
    forged = _rewrite(
        pack, tmp_path / "forged.zip", {MANIFEST: manifest.replace(b'"events"', b'"event5"', 1)}
    )
    check = verify_pack(forged, signing_key(settings).public_key())
    assert check.problems[0].startswith("manifest.json: the signature does not match")
    other = verify_pack(pack, Ed25519PrivateKey.generate().public_key())
    assert [p.split(":")[0] for p in other.problems] == ["manifest.json"]


def test_events_removed_from_the_chain_are_found_even_with_a_re_signed_manifest(
    pack: Path, settings: Settings, tmp_path: Path
) -> None:
    """Someone holding the signing key could rewrite the manifest; the chain still tells."""
    with zipfile.ZipFile(pack) as archive:
        lines = archive.read("audit/events.jsonl").splitlines(keepends=True)
        manifest = json.loads(archive.read(MANIFEST))
    assert len(lines) >= 3
    events = b"".join(lines[:1] + lines[2:])
    for entry in manifest["files"]:
        if entry["path"] == "audit/events.jsonl":
            entry.update(sha256=hashlib.sha256(events).hexdigest(), bytes=len(events))
    manifest["audit_chain"]["events"] -= 1
    raw = json.dumps(manifest).encode()
    key = signing_key(settings)
    forged = _rewrite(
        pack,
        tmp_path / "forged.zip",
        {"audit/events.jsonl": events, MANIFEST: raw, SIGNATURE: sign(key, raw)},
    )
    check = verify_pack(forged, key.public_key())
    second = json.loads(lines[1])["id"]
    assert check.problems == [
        f"audit/events.jsonl: the audit chain is broken: line 2 is event {second + 1}; "
        f"expected {second}"
    ]


def test_a_truncated_or_corrupt_zip_is_refused_with_what_is_wrong(
    pack: Path, settings: Settings, tmp_path: Path
) -> None:
    key = signing_key(settings).public_key()
    data = pack.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    assert verify_pack(truncated, key).problems == [
        "truncated.zip: not a readable zip archive (File is not a zip file)"
    ]
    # Flip a byte inside the first member's compressed data (the audit events).
    with zipfile.ZipFile(pack) as archive:
        info = archive.getinfo("audit/events.jsonl")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :])
    problems = verify_pack(corrupt, key).problems
    assert problems
    assert all(p.startswith("audit/events.jsonl: ") for p in problems)


def test_the_verify_command_says_intact_or_names_each_problem(
    pack: Path, key_file: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    good = runner.invoke(evidence, ["verify", str(pack), "--public-key", str(key_file)])
    assert good.exit_code == 0, good.output
    assert f"{pack.name} is intact: signature valid" in good.output
    with zipfile.ZipFile(pack) as archive:
        index = archive.read("index.html")
    forged = _rewrite(pack, tmp_path / "forged.zip", {"index.html": index + b"<!-- -->"})
    bad = runner.invoke(evidence, ["verify", str(forged), "--public-key", str(key_file)])
    assert bad.exit_code == 1
    assert "index.html: changed" in bad.output
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    refused = runner.invoke(evidence, ["verify", str(pack), "--public-key", str(not_a_key)])
    assert refused.exit_code == 2
    assert "is not a PEM public key" in refused.output


def test_a_failed_write_leaves_no_pack_behind(
    engine: Engine, settings: Settings, export: Export, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plugins.soc2.pack as pack_module

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pack_module, "_render_index", full_disk)
    append_alone(
        engine, actor="tests", action="portal.task.cancel", allowed=True, outcome="succeeded"
    )
    done = export(TODAY, TODAY)
    assert done.status == "failed"
    assert done.error is not None
    assert "No space left on device" in done.error
    assert list(settings.evidence_dir.iterdir()) == []
    with Session(engine) as session:
        last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
    assert last is not None
    assert (last.action, last.outcome) == ("soc2.evidence.export", "failed")
