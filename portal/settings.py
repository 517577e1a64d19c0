"""Paved's settings: one class, read from ``paved.yaml`` and ``PAVED_*`` variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from portal.errors import ConfigurationError, FieldProblem

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


class MlflowSettings(BaseModel):
    """Where runs, models and their artifacts are tracked (MLflow)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking and registry URI (e.g. `http://mlflow:5000`). Unset: "
        "an embedded store, a SQLite file and an artifact folder under `<data_dir>/mlflow`.",
    )
    ui_url: str | None = Field(
        None,
        description="Address where people open MLflow's UI, for the links on run and model "
        "pages. Default: the embedded server's, when it runs; else no links.",
    )
    embedded_server: bool = Field(
        True,
        description="When the store is embedded, `paved up` starts `mlflow server` on it (UI "
        "and REST) beside the portal, with its job execution turned off.",
    )
    embedded_port: int = Field(
        5000, ge=1, le=65535, description="Port of the embedded MLflow server (loopback)."
    )


class KubernetesSettings(BaseModel):
    """How the Kubernetes training backend and serving runtime reach a cluster."""

    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig file to use. Unset: the in-cluster service account when "
        "Paved runs in a pod, else `~/.kube/config`.",
    )
    context: str | None = Field(None, description="Kubeconfig context to use.")
    api_url: str | None = Field(
        None,
        description="API server URL, overriding the kubeconfig's (with `insecure` for a "
        "server without TLS, as in tests).",
    )
    namespace: str = Field(
        "team-{team}",
        description="Namespace of a team's jobs and model servers; `{team}` is the owning "
        "group's name.",
    )
    image: str = Field(
        "ghcr.io/paved/ml-runtime:latest",
        description="Container image that clones a project and runs it (training) or "
        "serves an MLflow model (serving).",
    )
    ttl_seconds_after_finished: int = Field(
        3600, ge=0, description="How long a finished training Job is kept before deletion."
    )
    serving_mode: Literal["kserve", "deployment"] = Field(
        "kserve",
        description="`kserve`: an InferenceService (KServe splits canary traffic); "
        "`deployment`: a Deployment, Service and HorizontalPodAutoscaler per version.",
    )


class TrainingSettings(BaseModel):
    """How training jobs run."""

    default_backend: str = Field(
        "local",
        description="Backend of a job whose project names none (`local`, `kubernetes`, or "
        "one a plugin adds).",
    )
    python: Path | None = Field(
        None,
        description="Python interpreter the local runner gives a project's `python` entry "
        "point. Default: the one running the portal.",
    )
    work_root: Path | None = Field(
        None,
        description="Folder where the local runner checks out each job's project. "
        "Default: `<data_dir>/training`.",
    )
    max_memory: str = Field(
        "8Gi",
        description="Most memory a local job may ask for (its project's "
        "`training.resources.memory`); the job is stopped above what it asked.",
    )
    max_cpu: float = Field(
        4, gt=0, description="Most CPUs a local job may ask for (`training.resources.cpu`)."
    )
    max_timeout_minutes: int = Field(
        24 * 60, ge=1, description="Longest a job may run before it is stopped."
    )


class ServingSettings(BaseModel):
    """How deployed models are served."""

    environments: list[str] = Field(
        default_factory=lambda: ["staging", "production"],
        description="Environments a model can be deployed to; the policy treats "
        "`production` specially.",
    )
    default_runtime: str = Field(
        "local",
        description="Runtime of a deployment that names none (`local`, `kubernetes`, or one "
        "a plugin adds).",
    )
    python: Path | None = Field(
        None,
        description="Python interpreter of local model servers. Default: the portal's.",
    )
    ports: tuple[int, int] = Field(
        (8100, 8999), description="Range of loopback ports local model servers listen on."
    )
    start_timeout: float = Field(
        60, gt=0, description="Seconds a model server has to answer its health check."
    )
    metrics_window: float = Field(
        60,
        gt=0,
        description="Seconds of requests the router keeps per version to judge a canary "
        "(error rate, p99).",
    )
    min_canary_requests: int = Field(
        20,
        ge=1,
        description="Requests a canary must have served in the window before its error "
        "rate or p99 can roll it back.",
    )
    judge_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between two checks of every canary's figures."
    )
    route_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds the router keeps a deployment's route before reading it again: "
        "how long a change made by another portal process takes to reach this one.",
    )
    drift_sample_every: int = Field(
        10, ge=1, description="Read the features of one request in this many, for drift."
    )


class PluginSettings(BaseModel):
    """Which plugins are loaded."""

    disabled: list[str] = Field(
        default_factory=list,
        description="Entry-point names of plugins not to load, e.g. `[cost, pii]`.",
    )


class Settings(BaseSettings):
    """Every setting of a Paved portal.

    Precedence: arguments, then ``PAVED_*`` environment variables (nested with ``__``,
    e.g. ``PAVED_TASKS__POLL_INTERVAL``), then ``paved.yaml``, then the defaults here.
    """

    model_config = SettingsConfigDict(
        env_prefix="PAVED_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(
        Path(".paved"), description="Folder for the embedded database and local state."
    )
    database_url: str | None = Field(
        None,
        description="Database URL: `sqlite:///path` or `postgresql://user@host:port/db`. "
        "Default: a SQLite file in `data_dir`.",
    )
    host: str = Field("127.0.0.1", min_length=1, description="Address the portal listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the portal listens on.")
    public_url: str | None = Field(
        None, description="The portal's address as people reach it; default from host and port."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level of log lines written."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="`json`: one JSON object per line; `text`: for a terminal."
    )
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    scaffolder: ScaffolderSettings = Field(default_factory=ScaffolderSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_database_url(value)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def sqlalchemy_url(self) -> URL:
        """The database URL with Paved's driver; the SQLite default lives in ``data_dir``."""
        raw = self.database_url or f"sqlite:///{self.data_dir / 'paved.db'}"
        return parse_database_url(raw)

    @property
    def git_root(self) -> Path:
        """Where published repositories live (``scaffolder.git_root``, else in ``data_dir``)."""
        return (self.scaffolder.git_root or self.data_dir / "git").absolute()

    @property
    def mlflow_dir(self) -> Path:
        """The embedded MLflow store's folder: ``mlflow.db`` and ``artifacts/``."""
        return (self.data_dir / "mlflow").absolute()

    @property
    def tracking_uri(self) -> str:
        """MLflow's tracking and registry URI: the configured one, else the embedded store."""
        return self.mlflow.tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def training_root(self) -> Path:
        return (self.training.work_root or self.data_dir / "training").absolute()

    @property
    def workspace_root(self) -> Path:
        return (self.scaffolder.workspace_root or self.data_dir / "scaffolder").absolute()

    @model_validator(mode="after")
    def _catalog_reads_published_repositories(self) -> Settings:
        if self.git_root not in self.catalog.file_roots:
            self.catalog.file_roots.append(self.git_root)
        return self

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @property
    def is_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "::1", "localhost"} or self.host.startswith("127.")

    @model_validator(mode="after")
    def _local_sign_in_stays_on_this_machine(self) -> Settings:
        if self.auth.local.enabled and not self.is_loopback:
            raise ValueError(
                f"auth.local.enabled lets anyone sign in as anyone, so it needs a loopback "
                f"host (127.0.0.1), not {self.host!r}; expected OIDC (auth.oidc.*) instead"
            )
        return self

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, with secrets and passwords hidden."""
        data = self.model_dump(mode="json")
        data["database_url"] = self.sqlalchemy_url.render_as_string(hide_password=True)
        return data


def _config_file() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigurationError(
                f"{CONFIG_ENV} names {named!r}, which is not a file; "
                "expected the path of a paved.yaml"
            )
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _without_password(value: Any) -> Any:
    """A URL-looking value with its password replaced by ***, for error messages."""
    if isinstance(value, str) and "://" in value:
        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return value.split("://", 1)[0] + "://***"
    return value


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning every invalid value into one readable ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        lines = [
            f"  {p.field}: {p.expected}"
            if p.field == "settings"
            else f"  {p.field}: {p.message}; {p.expected}"
            for p in problems
        ]
        raise ConfigurationError("invalid settings:\n" + "\n".join(lines), problems) from None
    except (ValueError, OSError, yaml.YAMLError) as exc:
        # An unreadable file or malformed YAML surfaces as the reader's own error.
        shown = " ".join(str(exc).split())
        raise ConfigurationError(f"cannot read the settings: {shown}") from None


def _problem(error: Any) -> FieldProblem:
    """Name the key (and its environment variable), the value given and what was expected."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        return FieldProblem(key, "unknown setting", "one of the keys `paved config show` lists")
    value = error.get("input")
    shown = "{...}" if isinstance(value, dict) else repr(_without_password(value))
    expected = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # a rule across several settings
        return FieldProblem("settings", "inconsistent", expected)
    return FieldProblem(f"{key} (PAVED_{'__'.join(loc).upper()})", f"got {shown}", expected)


def render_reference() -> str:
    """The settings reference in Markdown, generated from the fields' descriptions."""
    lines = [
        "# Settings reference",
        "",
        "Generated by `paved config reference` from `portal/settings.py`; do not edit.",
        "Set them in `paved.yaml` (nested keys) or as environment variables (which win).",
        "",
        "| key | environment variable | default | meaning |",
        "| --- | --- | --- | --- |",
    ]

    def walk(model: type[BaseModel], prefix: list[str]) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, [*prefix, name])
                continue
            path = [*prefix, name]
            default = field.get_default(call_default_factory=True)
            shown = "none" if default is None else f"`{default}`"
            description = (field.description or "").replace("|", "\\|")
            lines.append(
                f"| `{'.'.join(path)}` | `PAVED_{'__'.join(path).upper()}` | {shown} "
                f"| {description} |"
            )

    walk(Settings, [])
    return "\n".join(lines) + "\n"
