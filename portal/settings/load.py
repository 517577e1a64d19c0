"""The ``Settings`` class, and reading it from ``paved.yaml`` and ``PAVED_*`` variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
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
from portal.settings.governance import CostSettings, PiiSettings, Soc2Settings
from portal.settings.ml import (
    KubernetesSettings,
    MlflowSettings,
    ServingSettings,
    TrainingSettings,
)
from portal.settings.sections import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    AuthSettings,
    CatalogSettings,
    PluginSettings,
    PolicySettings,
    ScaffolderSettings,
    TaskSettings,
    parse_database_url,
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
    pii: PiiSettings = Field(default_factory=PiiSettings)
    cost: CostSettings = Field(default_factory=CostSettings)
    soc2: Soc2Settings = Field(default_factory=Soc2Settings)

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
    def evidence_dir(self) -> Path:
        """Where evidence packs are written (``soc2.pack_dir``, else in ``data_dir``)."""
        return (self.soc2.pack_dir or self.data_dir / "evidence").absolute()

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
        "Generated by `paved config reference` from `portal/settings/`; do not edit.",
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
