"""The Paved error hierarchy: every failure a person or a client can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: where it is, what was wrong, and what was expected."""

    field: str
    message: str
    expected: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "expected": self.expected}


@dataclass
class PavedError(Exception):
    """Base of every error Paved raises on purpose; ``status`` is its HTTP status."""

    detail: str
    errors: list[FieldProblem] = field(default_factory=list)

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def __str__(self) -> str:
        return self.detail


@dataclass
class InvalidInput(PavedError):
    """The input is not what was expected; ``errors`` names each field."""

    status: ClassVar[int] = 422
    title: ClassVar[str] = "Invalid input"
    slug: ClassVar[str] = "invalid-input"

    @classmethod
    def for_field(cls, name: str, message: str, expected: str | None = None) -> InvalidInput:
        return cls(f"{name}: {message}", [FieldProblem(name, message, expected)])


@dataclass
class NotAuthenticated(PavedError):
    status: ClassVar[int] = 401
    title: ClassVar[str] = "Not signed in"
    slug: ClassVar[str] = "not-authenticated"


@dataclass
class Denied(PavedError):
    """The policy said no; ``reasons`` are shown to the person as they are."""

    reasons: list[str] = field(default_factory=list)
    action: str | None = None

    status: ClassVar[int] = 403
    title: ClassVar[str] = "Not allowed"
    slug: ClassVar[str] = "denied"


@dataclass
class NotFound(PavedError):
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Not found"
    slug: ClassVar[str] = "not-found"


@dataclass
class Conflict(PavedError):
    status: ClassVar[int] = 409
    title: ClassVar[str] = "Conflict"
    slug: ClassVar[str] = "conflict"


@dataclass
class EngineUnavailable(PavedError):
    """A part Paved depends on (database, policy engine) cannot answer."""

    status: ClassVar[int] = 503
    title: ClassVar[str] = "Service unavailable"
    slug: ClassVar[str] = "unavailable"


@dataclass
class ConfigurationError(PavedError):
    """The settings or the environment are wrong; raised before the portal serves."""

    slug: ClassVar[str] = "configuration"
    title: ClassVar[str] = "Configuration error"
