"""Secret values of a run: kept apart from its values, sealed with the portal's key while
the run needs them, and masked wherever they would be shown (logs, errors, outputs).

A secret is what a template's caller sends as ``secrets`` (``${{ secrets.token }}``), and the
value of any field whose form says it is one (``ui:field: Secret``, ``ui:widget: password``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.auth.sessions import secret_key
from portal.errors import InvalidInput
from portal.settings import Settings
from scaffolder import parameters

MASK = "***"
SECRET_FIELDS = ("Secret",)
SECRET_WIDGETS = ("password",)


def secret_names(template: Mapping[str, Any]) -> set[str]:
    """The fields of ``template``'s form whose values are secrets, also those that only
    some values bring in."""
    return {name for name, field in parameters.every_field(template) if is_secret(field)}


def is_secret(field: Mapping[str, Any]) -> bool:
    """Whether a form field holds a secret (``ui:field: Secret``, ``ui:widget: password``)."""
    return field.get("ui:field") in SECRET_FIELDS or field.get("ui:widget") in SECRET_WIDGETS


def split(
    template: Mapping[str, Any], values: Mapping[str, Any], secrets: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values to keep and show, and every secret (sent apart or filled in the form)."""
    names = secret_names(template)
    kept = {key: value for key, value in values.items() if key not in names}
    hidden = {key: str(value) for key, value in values.items() if key in names}
    return kept, {**hidden, **{str(key): str(value) for key, value in secrets.items()}}


def _fernet(settings: Settings) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"paved scaffolder secrets"
    ).derive(secret_key(settings).encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(settings: Settings, secrets: Mapping[str, str]) -> str | None:
    """``secrets`` encrypted with a key derived from the portal's secret key."""
    if not secrets:
        return None
    return _fernet(settings).encrypt(json.dumps(dict(secrets)).encode()).decode()


def unseal(settings: Settings, sealed: str | None) -> dict[str, str]:
    if not sealed:
        return {}
    try:
        opened = json.loads(_fernet(settings).decrypt(sealed.encode()))
    except InvalidToken:
        raise InvalidInput.for_field(
            "secrets",
            "the run's secrets were sealed with another secret key (auth.secret_key changed)",
            "the run's secrets sent again with the retry",
        ) from None
    return {str(key): str(value) for key, value in opened.items()}


class Masker:
    """Replaces every secret value in text (and in the strings of JSON-like values)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.values = sorted({v for v in secrets.values() if v}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def value(self, value: Any) -> Any:
        if not self.values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value
