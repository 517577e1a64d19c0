"""The history of the policies in force: each distinct set of Rego modules and data is
recorded, with a digest and the moment it was first loaded, for change evidence."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from portal.db import as_utc, utcnow
from portal.models import PortalMeta
from portal.policy import POLICY_DIR

log = logging.getLogger("paved.policy")
PREFIX = "policy_version:"


@dataclass(frozen=True)
class PolicyVersion:
    digest: str
    first_loaded: datetime
    files: dict[str, str]  # file -> SHA-256


def describe_folders(folders: Sequence[Path]) -> dict[str, str]:
    """Each policy file (Rego and data) by a name without this machine's paths, with its
    SHA-256."""
    files: dict[str, str] = {}
    for folder in folders:
        label = folder.name if folder == POLICY_DIR else f"{folder.parent.name}/{folder.name}"
        for path in sorted(folder.rglob("*")):
            if path.suffix in {".rego", ".json"} and path.is_file():
                name = f"{label}/{path.relative_to(folder).as_posix()}"
                files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def record_version(engine: Engine, folders: Sequence[Path]) -> str | None:
    """Record the policies in ``folders`` unless this exact version was seen before;
    returns its digest. A failure is logged, never raised: serving goes on."""
    try:
        files = describe_folders(folders)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        with Session(engine) as session:
            if session.get(PortalMeta, PREFIX + digest) is None:
                value = {"first_loaded": utcnow().isoformat(), "files": files}
                session.add(PortalMeta(key=PREFIX + digest, value=json.dumps(value)))
                session.commit()
        return digest
    except IntegrityError:  # another replica recorded it at the same moment
        return None
    except (OSError, SQLAlchemyError):
        log.warning("the policy version could not be recorded", exc_info=True)
        return None


def list_versions(session: Session) -> list[PolicyVersion]:
    """Every policy version recorded, oldest first."""
    rows = session.exec(select(PortalMeta).where(col(PortalMeta.key).startswith(PREFIX))).all()
    versions = []
    for row in rows:
        value = json.loads(row.value)
        versions.append(
            PolicyVersion(
                digest=row.key.removeprefix(PREFIX),
                first_loaded=as_utc(datetime.fromisoformat(value["first_loaded"])),
                files=dict(value["files"]),
            )
        )
    return sorted(versions, key=lambda version: version.first_loaded)
