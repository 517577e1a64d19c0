"""The web shell: templates, navigation and entity tabs gathered from the plugins."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from portal.auth.sessions import csrf_token

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
VENDOR_FILES = (
    "vendor/htmx.min.js",
    "vendor/pico.min.css",
    "vendor/swagger-ui-bundle.js",
    "vendor/swagger-ui.css",
)

log = logging.getLogger("paved.shell")


@dataclass(frozen=True)
class NavItem:
    """An entry of the navigation shown on every page."""

    label: str
    href: str
    order: int = 100

    def __post_init__(self) -> None:
        _require(
            isinstance(self.label, str) and self.label.strip(),
            "NavItem.label",
            self.label,
            "a non-empty string",
        )
        _require(
            isinstance(self.href, str) and self.href.startswith(("/", "https://", "http://")),
            "NavItem.href",
            self.href,
            "a path starting with / or an http(s) URL",
        )
        _require(type(self.order) is int, "NavItem.order", self.order, "an integer")


@dataclass(frozen=True)
class EntityTab:
    """A tab on catalog entity pages; ``path`` is a template with kind, namespace and name."""

    id: str
    label: str
    path: str
    kinds: tuple[str, ...] = ()
    order: int = 100

    def __post_init__(self) -> None:
        _require(
            isinstance(self.id, str) and self.id.isidentifier(),
            "EntityTab.id",
            self.id,
            "an identifier such as `deployments`",
        )
        _require(
            isinstance(self.label, str) and self.label.strip(),
            "EntityTab.label",
            self.label,
            "a non-empty string",
        )
        _require(
            isinstance(self.path, str) and self.path.startswith("/"),
            "EntityTab.path",
            self.path,
            "a path template such as /serving/{kind}/{namespace}/{name}",
        )
        _require(
            isinstance(self.kinds, tuple) and all(isinstance(k, str) for k in self.kinds),
            "EntityTab.kinds",
            self.kinds,
            "a tuple of entity kinds, e.g. ('Model',)",
        )
        _require(type(self.order) is int, "EntityTab.order", self.order, "an integer")

    def applies_to(self, kind: str) -> bool:
        return not self.kinds or kind.lower() in {k.lower() for k in self.kinds}

    def url(self, *, kind: str, namespace: str, name: str) -> str:
        return self.path.format(kind=kind.lower(), namespace=namespace, name=name)


def _require(holds: object, field: str, value: object, expected: str) -> None:
    """Refuse a malformed contribution where it is made, so the plugin is the one blamed."""
    if not holds:
        raise TypeError(f"{field} is {value!r}; expected {expected}")


def paved_version() -> str:
    try:
        return version("paved")
    except PackageNotFoundError:
        return "dev"


def missing_vendor_files() -> list[str]:
    return [name for name in VENDOR_FILES if not (STATIC_DIR / name).is_file()]


class Shell:
    """Renders pages in the base layout, or only their fragment for htmx requests."""

    def __init__(
        self,
        *,
        nav_items: list[NavItem],
        entity_tabs: list[EntityTab],
        template_dirs: list[Path],
        local_sign_in: bool = False,
    ) -> None:
        self.nav_items = sorted(nav_items, key=lambda item: (item.order, item.label))
        self.entity_tabs = sorted(entity_tabs, key=lambda tab: (tab.order, tab.label))
        environment = Environment(
            loader=ChoiceLoader(
                [
                    FileSystemLoader(str(TEMPLATES_DIR)),
                    *(FileSystemLoader(str(d)) for d in template_dirs),
                ]
            ),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=environment)
        environment.globals.update(
            nav_items=self.nav_items,
            paved_version=paved_version(),
            has_vendor_files=not missing_vendor_files(),
            local_sign_in=local_sign_in,
        )
        if missing_vendor_files():
            log.warning(
                "front-end libraries are missing (%s): pages work without them; run "
                "`make web` to build them",
                ", ".join(missing_vendor_files()),
            )

    def tabs_for(self, kind: str) -> list[EntityTab]:
        return [tab for tab in self.entity_tabs if tab.applies_to(kind)]

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        fragment: str | None = None,
    ) -> HTMLResponse:
        """Render ``template``; an htmx request gets ``fragment`` alone when one is given."""
        is_htmx = request.headers.get("HX-Request") == "true"
        name = fragment if fragment and is_htmx else template
        identity = getattr(request.state, "identity", None)
        response = self.templates.TemplateResponse(
            request,
            name,
            {
                "current_path": request.url.path,
                "identity": identity,
                # Forms and htmx send it back on every state-changing request.
                "csrf_token": csrf_token(request) if "session" in request.scope else "",
                **(context or {}),
            },
            status_code=status_code,
        )
        if fragment:
            # One URL, two bodies: caches (and the back button) must keep them apart.
            response.headers["Vary"] = "HX-Request"
        return response


def wants_html(request: Request) -> bool:
    """A person's browser rather than an API client: pages, not problem JSON."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")
