"""The identity every decision is about: a catalog User ref with its groups and roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Identity:
    """A signed-in person (``via="session"``) or a script with an API token (``"token"``)."""

    ref: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    name: str = ""
    via: Literal["session", "token"] = "session"
    token_id: int | None = field(default=None, compare=False)
