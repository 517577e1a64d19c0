"""The identity every decision is about: a catalog User ref with its groups and roles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# A catalog User entity ref, as Backstage writes them: user:<namespace>/<name>.
USER_REF = re.compile(
    r"^user:[a-z0-9]([a-z0-9_.-]*[a-z0-9])?/[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class Identity:
    """A signed-in person (``via="session"``) or a script with an API token (``"token"``)."""

    ref: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    name: str = ""
    via: Literal["session", "token"] = "session"
    token_id: int | None = field(default=None, compare=False)
    expires_at: datetime | None = field(default=None, compare=False)  # of the token, if one

    @property
    def display_name(self) -> str:
        return self.name or self.ref.rsplit("/", 1)[-1]

    def as_policy_user(self) -> dict[str, Any]:
        return {"ref": self.ref, "groups": list(self.groups), "roles": list(self.roles)}

    def to_session(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "roles": list(self.roles),
            "groups": list(self.groups),
            "name": self.name,
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Identity:
        return cls(
            ref=str(data["ref"]),
            roles=tuple(data.get("roles", ())),
            groups=tuple(data.get("groups", ())),
            name=str(data.get("name", "")),
        )


def user_ref(name: str, namespace: str = "default") -> str:
    return f"user:{namespace}/{name}"


def group_ref(name: str, namespace: str = "default") -> str:
    return name if ":" in name else f"group:{namespace}/{name}"
