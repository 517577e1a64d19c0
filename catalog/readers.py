"""Reading locations: files under the allowed roots, URLs on the allowed hosts, nothing else.

A location is ``type`` plus ``target``: ``file`` with a path, ``url`` with an http(s) URL.
A path inside a bare git repository (``<root>/team/project.git/catalog-info.yaml``, as
``publish:git`` makes them) is the file on the repository's default branch.
Relative targets (in a Location entity's ``spec.targets``) are resolved against the file or
URL that names them. Every refusal is an ``InvalidInput`` naming ``target`` and saying what
was expected, so it can be shown on the location.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from portal.errors import InvalidInput
from portal.settings import CatalogSettings

LOCATION_TYPES = ("file", "url")
DEMO_DIR = Path(__file__).parent / "demo"
# What Paved itself ships, always readable: its demo catalog and its golden-path templates.
SHIPPED_DIRS = (DEMO_DIR, Path(__file__).parents[1] / "scaffolder" / "golden_paths")


@dataclass(frozen=True)
class Source:
    """One readable place: a file path (absolute, resolved) or a URL."""

    type: str
    target: str

    @property
    def key(self) -> str:
        """As Backstage writes it in ``backstage.io/managed-by-location``: ``file:/a/b.yaml``."""
        return f"{self.type}:{self.target}"


def resolve(
    type_: str, target: str, *, relative_to: Source | None = None, field: str = "target"
) -> Source:
    """The source ``type_``/``target`` names, relative targets taken from ``relative_to``."""
    if type_ not in LOCATION_TYPES:
        raise InvalidInput.for_field("type", f"{type_!r} is not a location type", "file or url")
    if not isinstance(target, str) or not target.strip():
        raise InvalidInput.for_field(field, "missing", "a file path or an http(s) URL")
    target = target.strip()
    if type_ == "url":
        if relative_to is not None and relative_to.type == "url":
            target = urljoin(relative_to.target, target)
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput.for_field(field, f"{target!r} is not a URL", "an http(s) URL")
        return Source("url", target)
    path = Path(target)
    if not path.is_absolute():
        if relative_to is None or relative_to.type != "file":
            raise InvalidInput.for_field(
                field, f"{target!r} is a relative path", "an absolute path to a YAML file"
            )
        path = Path(relative_to.target).parent / path
    return Source("file", str(path.resolve()))


def read(source: Source, settings: CatalogSettings) -> bytes:
    """The bytes at ``source``, or InvalidInput saying why it may not or cannot be read."""
    if source.type == "url":
        return _read_url(source.target, settings)
    return _read_file(Path(source.target), settings)


def allowed_roots(settings: CatalogSettings) -> list[Path]:
    return [
        *(folder.resolve() for folder in SHIPPED_DIRS),
        *(root.resolve() for root in settings.file_roots),
    ]


def _read_file(path: Path, settings: CatalogSettings) -> bytes:
    roots = allowed_roots(settings)
    if not any(path.is_relative_to(root) for root in roots):
        configured = ", ".join(str(root) for root in settings.file_roots) or "none configured"
        raise InvalidInput.for_field(
            "target",
            f"{path} is outside the catalog's file roots",
            f"a file under one of catalog.file_roots ({configured})",
        )
    repository = _bare_repository(path, roots)
    if repository is not None:
        return _read_from_git(repository, path.relative_to(repository).as_posix(), settings)
    try:
        size = path.stat().st_size
        if size > settings.max_file_bytes:
            raise _too_large(str(path), size, settings)
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput.for_field(
            "target", f"{path} does not exist", "an existing YAML file"
        ) from None
    except IsADirectoryError:
        raise InvalidInput.for_field(
            "target", f"{path} is a folder", "a YAML file, e.g. catalog-info.yaml"
        ) from None
    except PermissionError:
        raise InvalidInput.for_field(
            "target", f"{path} cannot be read (permission denied)", "a readable file"
        ) from None


def _bare_repository(path: Path, roots: list[Path]) -> Path | None:
    """The bare git repository ``path`` is inside (``.../<repo>.git/catalog-info.yaml``),
    if it is in one: such a path names the file on the repository's default branch."""
    for folder in path.parents:
        if not any(folder.is_relative_to(root) for root in roots):
            return None
        if (
            folder.suffix == ".git"
            and (folder / "HEAD").is_file()
            and (folder / "objects").is_dir()
        ):
            return folder
    return None


def _read_from_git(repository: Path, inside: str, settings: CatalogSettings) -> bytes:
    """The file ``inside`` the repository on its default branch (what ``HEAD`` names)."""
    where = f"{repository}/{inside}"

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", f"--git-dir={repository}", *args], capture_output=True, timeout=30, check=False
        )

    sized = git("cat-file", "-s", f"HEAD:{inside}")
    if sized.returncode != 0:
        raise InvalidInput.for_field(
            "target",
            f"{where} does not exist on the repository's default branch",
            "a YAML file committed to the repository",
        )
    size = int(sized.stdout)
    if size > settings.max_file_bytes:
        raise _too_large(where, size, settings)
    shown = git("cat-file", "blob", f"HEAD:{inside}")
    if shown.returncode != 0:
        raise InvalidInput.for_field(
            "target", f"{where} is not a file: {shown.stderr.decode().strip()}", "a YAML file"
        )
    return shown.stdout


def _read_url(url: str, settings: CatalogSettings) -> bytes:
    host = (urlsplit(url).hostname or "").lower()
    allowed = [entry.lower() for entry in settings.url_hosts]
    if host not in allowed:
        raise InvalidInput.for_field(
            "target",
            f"{host} is not a host the catalog may read from",
            f"a URL on one of catalog.url_hosts ({', '.join(allowed) or 'none configured'})",
        )
    import httpx  # only when a url location is read: it costs start-up time

    try:
        # No redirects: a redirect could lead to an address not on the list.
        with httpx.stream("GET", url, timeout=10.0, follow_redirects=False) as response:
            if response.status_code != 200:
                raise InvalidInput.for_field(
                    "target", f"{url} answered {response.status_code}", "a URL that answers 200"
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > settings.max_file_bytes:
                    raise _too_large(url, len(body), settings)
            return bytes(body)
    except httpx.HTTPError as exc:
        raise InvalidInput.for_field(
            "target", f"{url} cannot be fetched: {exc}", "a reachable URL"
        ) from None


def _too_large(where: str, size: int, settings: CatalogSettings) -> InvalidInput:
    return InvalidInput.for_field(
        "target",
        f"{where} is {size:,} bytes",
        f"at most {settings.max_file_bytes:,} bytes (catalog.max_file_bytes)",
    )
