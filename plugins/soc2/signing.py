"""The Ed25519 key that signs evidence packs: read from settings or kept in the data
folder, and the public half people verify packs with."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from portal.errors import ConfigurationError
from portal.settings import Settings

KEY_FILE = "soc2-signing-key.pem"


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The setting's key, else the one in ``<data_dir>/soc2-signing-key.pem``, made once."""
    if settings.soc2.signing_key is not None:
        pem = settings.soc2.signing_key.get_secret_value().encode()
        return _private_key(pem, "soc2.signing_key")
    path = Path(settings.data_dir) / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written once, readable only by this user; a concurrent first start keeps the winner.
        try:
            with path.open("xb") as handle:
                path.chmod(0o600)
                handle.write(made)
        except FileExistsError:
            pass
    return _private_key(path.read_bytes(), str(path))


def _private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{where} is not a PEM private key ({exc}); expected an unencrypted Ed25519 key "
            "such as `openssl genpkey -algorithm ed25519` writes"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(
            f"{where} holds a {type(key).__name__.removeprefix('_')}; expected an Ed25519 key"
        )
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:`` and the base64 of the raw public key's digest, as ssh-keygen shows keys."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    """A public key from PEM, or ValueError naming ``where`` and what was expected."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ValueError(
            f"{where} is not a PEM public key; expected the key GET /api/soc2/public-key gives"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{where} is not an Ed25519 public key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """A detached signature, base64 on one line (what ``manifest.json.sig`` holds)."""
    return base64.b64encode(key.sign(data)) + b"\n"


def is_signed_by(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
