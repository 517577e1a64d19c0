"""Paved's settings: one class, read from ``paved.yaml`` and ``PAVED_*`` variables.

``load`` holds ``Settings`` and how it is read; ``sections`` the portal's own sections;
``ml`` those of the ML lifecycle; ``governance`` those of PII scanning and cost.
"""

from portal.settings.governance import (
    CostSettings,
    CustomRecognizer,
    OpenCostSettings,
    PiiSettings,
)
from portal.settings.load import Settings, load_settings, render_reference
from portal.settings.ml import (
    KubernetesSettings,
    MlflowSettings,
    ServingSettings,
    TrainingSettings,
)
from portal.settings.sections import (
    CONFIG_ENV,
    DATABASE_URL_EXPECTED,
    DEFAULT_CONFIG_FILE,
    DEMO_USERS,
    ROLES,
    AuthSettings,
    CatalogSettings,
    LocalSignInSettings,
    LocalUser,
    OidcSettings,
    PluginSettings,
    PolicySettings,
    Role,
    ScaffolderSettings,
    TaskSettings,
    parse_database_url,
)

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_EXPECTED",
    "DEFAULT_CONFIG_FILE",
    "DEMO_USERS",
    "ROLES",
    "AuthSettings",
    "CatalogSettings",
    "CostSettings",
    "CustomRecognizer",
    "KubernetesSettings",
    "LocalSignInSettings",
    "LocalUser",
    "MlflowSettings",
    "OidcSettings",
    "OpenCostSettings",
    "PiiSettings",
    "PluginSettings",
    "PolicySettings",
    "Role",
    "ScaffolderSettings",
    "ServingSettings",
    "Settings",
    "TaskSettings",
    "TrainingSettings",
    "load_settings",
    "parse_database_url",
    "render_reference",
]
