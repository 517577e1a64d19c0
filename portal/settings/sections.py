"""The portal's own settings sections: tasks, policy, sign-in, catalog, scaffolder, plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

CONFIG_ENV = "PAVED_CONFIG"
DEFAULT_CONFIG_FILE = Path("paved.yaml")
DATABASE_URL_EXPECTED = "a URL like sqlite:///path/to/paved.db or postgresql://user@host:5432/db"

# Plain URLs are accepted; the driver behind each scheme is Paved's choice.
_DRIVERS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


def parse_database_url(raw: str) -> URL:
    """Parse a database URL and pick Paved's driver for it; raise ValueError if unusable."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError(f"expected {DATABASE_URL_EXPECTED}") from None
    backend = url.drivername.split("+", 1)[0]
    if backend not in _DRIVERS:
        raise ValueError(f"expected {DATABASE_URL_EXPECTED} ({backend} is not supported)")
    return url.set(drivername=_DRIVERS[backend])


class TaskSettings(BaseModel):
    """How long work is queued, claimed and watched."""

    in_process_worker: bool = Field(
        True,
        description="Run a task worker inside the portal process. Turn off when "
        "`paved worker` processes run beside it.",
    )
    poll_interval: float = Field(
        0.5, gt=0, le=60, description="Seconds an idle worker waits before looking for work."
    )
    heartbeat_interval: float = Field(
        5.0, gt=0, le=300, description="Seconds between a running task's heartbeats."
    )
    heartbeat_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds without a heartbeat after which a running task is "
        "considered orphaned (its worker died) and is claimed again.",
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="Claims of one task before it is failed for good."
    )

    @model_validator(mode="after")
    def _timeout_outlasts_heartbeats(self) -> TaskSettings:
        # A timeout shorter than two heartbeats would hand live tasks to a second worker.
        if self.heartbeat_timeout < 2 * self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_timeout ({self.heartbeat_timeout}) must be at least twice "
                f"heartbeat_interval ({self.heartbeat_interval})"
            )
        return self


class PolicySettings(BaseModel):
    """Where decisions come from."""

    engine_url: str | None = Field(
        None,
        description="URL of an OPA server (e.g. `http://127.0.0.1:8181`) asked through its "
        "REST Data API. Unset: Rego is evaluated in-process.",
    )
    timeout: float = Field(
        0.5, gt=0, le=30, description="Seconds to wait for the OPA server before denying (503)."
    )
    dirs: list[Path] = Field(
        default_factory=list,
        description="Extra folders of Rego modules, `*_test.rego` tests and `data.json`, "
        "read after Paved's own `policies/` and the plugins' folders.",
    )
    reload: bool = Field(
        False, description="Re-read the policies when their files change (for development)."
    )

    @field_validator("engine_url")
    @classmethod
    def _check_engine_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL of an OPA server, e.g. http://127.0.0.1:8181")
        return value


Role = Literal["data_scientist", "ml_engineer", "team_lead", "admin", "auditor"]
ROLES: tuple[str, ...] = ("data_scientist", "ml_engineer", "team_lead", "admin", "auditor")


class OidcSettings(BaseModel):
    """The OpenID Connect provider people sign in with (Keycloak, Okta, Entra ID, Dex)."""

    issuer: str | None = Field(
        None, description="Issuer URL; its `/.well-known/openid-configuration` is read."
    )
    client_id: str | None = Field(None, description="This portal's client id at the provider.")
    client_secret: SecretStr | None = Field(None, description="This portal's client secret.")
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email", "groups"],
        description="Scopes asked for at sign-in.",
    )
    groups_claim: str = Field(
        "groups", description="ID-token claim that lists the person's groups at the provider."
    )

    @property
    def is_configured(self) -> bool:
        return bool(self.issuer and self.client_id)


class LocalUser(BaseModel):
    """A person the local demo sign-in offers."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Becomes user:default/<name>.")
    display_name: str
    roles: list[Role]
    groups: list[str] = Field(default_factory=list, description="Catalog group refs.")


DEMO_USERS = [
    LocalUser(
        name="alice",
        display_name="Alice (ML engineer, fraud)",
        roles=["ml_engineer"],
        groups=["group:default/fraud"],
    ),
    LocalUser(
        name="bob",
        display_name="Bob (team lead, fraud)",
        roles=["team_lead"],
        groups=["group:default/fraud"],
    ),
    LocalUser(
        name="dana",
        display_name="Dana (data scientist, churn)",
        roles=["data_scientist"],
        groups=["group:default/churn"],
    ),
    LocalUser(name="audrey", display_name="Audrey (auditor)", roles=["auditor"]),
    LocalUser(
        name="root",
        display_name="Root (platform admin)",
        roles=["admin"],
        groups=["group:default/platform"],
    ),
]


class LocalSignInSettings(BaseModel):
    """A sign-in page without a provider, for demos on this machine only."""

    enabled: bool = Field(
        False,
        description="Offer the local sign-in page. Refused unless the portal listens on a "
        "loopback address; every page then shows a banner.",
    )
    users: list[LocalUser] = Field(
        default_factory=lambda: list(DEMO_USERS),
        description="Who can sign in locally; default: the demo users (an ML engineer, a "
        "team lead, a data scientist, an auditor and an admin).",
    )


class AuthSettings(BaseModel):
    """Who people are: OIDC sign-in, local demo sign-in, sessions and role mapping."""

    oidc: OidcSettings = Field(default_factory=OidcSettings)
    local: LocalSignInSettings = Field(default_factory=LocalSignInSettings)
    role_map: dict[str, list[Role]] = Field(
        default_factory=dict,
        description="Provider group -> Paved roles, e.g. `{ml-engineers: [ml_engineer]}`.",
    )
    group_map: dict[str, str] = Field(
        default_factory=dict,
        description="Provider group -> catalog group ref, e.g. "
        "`{team-fraud: group:default/fraud}`; unmapped groups become group:default/<name>.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs session cookies. Default: a random key kept in "
        "`<data_dir>/secret_key`. Set it (the same on every replica) when running several.",
    )
    session_idle_minutes: int = Field(
        480, ge=1, description="Minutes without a request after which a session ends."
    )
    session_max_hours: int = Field(
        24, ge=1, description="Hours after sign-in after which a session ends regardless."
    )
    token_cache_seconds: float = Field(
        10,
        ge=0,
        description="Seconds an identified API token is remembered, so most requests skip "
        "the database. A token revoked on another replica or with the CLI works here for at "
        "most this long; 0 looks every token up on every request.",
    )


class CatalogSettings(BaseModel):
    """Where the catalog may read entities from, and how often it refreshes them."""

    file_roots: list[Path] = Field(
        default_factory=list,
        description="Folders `file` locations may be under (JSON list in the environment, "
        "e.g. `PAVED_CATALOG__FILE_ROOTS='[\"/srv/catalog\"]'`). A file anywhere else is "
        "refused. Paved's own demo catalog, and the repositories it publishes "
        "(`scaffolder.git_root`), are always readable.",
    )
    url_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts `url` locations may be fetched from (e.g. `[github.example.com]`); "
        "no request goes to any other address.",
    )
    refresh_interval: float = Field(
        300.0,
        ge=0,
        description="Seconds between refreshes of every registered location; 0 refreshes "
        "only on demand (`POST /api/catalog/refresh`).",
    )
    max_file_bytes: int = Field(
        1_048_576, ge=1024, description="Largest catalog file read, in bytes."
    )
    max_depth: int = Field(
        10, ge=1, description="How deep Location entities may point at further locations."
    )
    remembered_mb: int = Field(
        64,
        ge=0,
        description="Memory each portal process gives to entities, pages, counts and facets "
        "remembered until the catalog next changes, in MiB; 0 remembers nothing.",
    )
    backstage_reference: Path = Field(
        Path("../shared/backstage-reference"),
        description="Folder of Backstage's reference data (example catalog, schemas, OpenAPI "
        "documents) that the compatibility tests read.",
    )


class ScaffolderSettings(BaseModel):
    """Where templates run and where the projects they make are published."""

    git_root: Path | None = Field(
        None,
        description="Folder of the git repositories `publish:git` creates (bare, one per "
        "`<owner>/<repo>`); the catalog may read the files on their default branch. "
        "Default: `<data_dir>/git`.",
    )
    git_remotes: dict[str, str] = Field(
        default_factory=dict,
        description="Other hosts `publish:git` may push to, each with the remote URL of a "
        'repository on it, e.g. `{"git.example.com": '
        '"ssh://git@git.example.com/{owner}/{repo}.git"}`. A `repoUrl` on any host not '
        "listed here (or `paved`, this portal's own repositories) is refused.",
    )
    workspace_root: Path | None = Field(
        None,
        description="Folder where each run renders its files before publishing them, kept for "
        "a retry until the run ends. Default: `<data_dir>/scaffolder`.",
    )
    max_files: int = Field(
        5000, ge=1, description="Most files a run may render into its workspace."
    )
    failed_workspace_retention_hours: float = Field(
        72,
        ge=0,
        description="How long the workspace of a failed run is kept for its retry; older ones "
        "are removed when the portal starts and whenever a run ends (a retry after that "
        "renders the files again). A cancelled run's workspace is removed at once.",
    )


class PluginSettings(BaseModel):
    """Which plugins are loaded."""

    disabled: list[str] = Field(
        default_factory=list,
        description="Entry-point names of plugins not to load, e.g. `[cost, pii]`.",
    )
