"""The app factory: assembles settings, database, plugins and the web shell into one app."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.middleware.sessions import SessionMiddleware

from portal import ops
from portal.actions import Action
from portal.auth import routes as auth_routes
from portal.auth import sessions
from portal.auth.tokens import TokenCache
from portal.db import create_database_engine
from portal.errors import ConfigurationError
from portal.fastlane import FastLane, Lane, lane_of
from portal.gate import STATIC_PATH, Authority, is_ungated, route_action, walk_routes
from portal.health import ReadinessCheck, check_database, check_policy
from portal.observability import Metrics, RequestMiddleware
from portal.plugins import Plugins
from portal.policy import (
    POLICY_DIR,
    PolicySource,
    PolicyWatcher,
    build_engine,
    make_engine,
    policy_folders,
)
from portal.policy_versions import record_version
from portal.problems import install_error_handlers
from portal.routing import is_hot_path, overlapping
from portal.settings import Settings
from portal.shell import STATIC_DIR, EntityTab, NavItem, Shell, paved_version
from portal.tasks import TaskHandler
from portal.worker import Worker

log = logging.getLogger("paved.app")


def create_app(
    settings: Settings,
    *,
    plugins: Plugins | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    """Build the portal; nothing runs until the app's lifespan starts."""
    plugins = plugins or Plugins.discover(disabled=settings.plugins.disabled)
    engine = engine or create_database_engine(settings)

    app = FastAPI(
        title="Paved",
        version=paved_version(),
        description="The internal developer portal for ML teams.",
        lifespan=_lifespan,
        # The API documents are served by gated routes of the core (see portal/api.py).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.plugins = plugins
    app.state.actions = _collect_actions(plugins)
    app.state.task_handlers = collect_task_handlers(plugins)
    app.state.policy_folders = collect_policy_folders(settings, plugins)
    app.state.policy = make_engine(
        engine_url=settings.policy.engine_url,
        timeout=settings.policy.timeout,
        folders=app.state.policy_folders,
    )
    app.state.token_cache = TokenCache(settings.auth.token_cache_seconds)
    app.state.oidc = None
    if settings.auth.oidc.is_configured:
        # Imported only when configured: Authlib and its HTTP client cost start-up time.
        from portal.auth.oidc import OidcSignIn

        app.state.oidc = OidcSignIn(settings.auth)
    app.state.readiness_checks = [
        ReadinessCheck("database", check_database),
        ReadinessCheck("policy", check_policy),
        *([ReadinessCheck("oidc", check_oidc)] if app.state.oidc else []),
        *(c.item for c in plugins.collect("paved_readiness_checks", ReadinessCheck)),
    ]
    app.state.shell = Shell(
        nav_items=[c.item for c in plugins.collect("paved_nav_items", NavItem)],
        entity_tabs=[c.item for c in plugins.collect("paved_entity_tabs", EntityTab)],
        template_dirs=[Path(c.item) for c in plugins.collect("paved_template_dirs", (str, Path))],
        local_sign_in=settings.auth.local.enabled,
    )
    app.state.metrics = Metrics()
    app.state.worker = None

    install_error_handlers(app)
    # Signing in is the core's alone: its routes are on the allowlist, so no plugin adds them.
    core_routers = [ops.router, auth_routes.router, auth_routes.api]
    contributions = plugins.collect("paved_routes", APIRouter)
    lanes: list[Lane] = []
    for contribution in contributions:
        if is_hot_path(contribution.item):
            others = [*core_routers, *(c.item for c in contributions if c is not contribution)]
            if _include_first(app, contribution.plugin, contribution.item, others):
                lanes += filter(None, map(lane_of, walk_routes(contribution.item.routes)))
    for router in core_routers:
        app.include_router(router)
    for contribution in contributions:
        if not is_hot_path(contribution.item):
            _include_router(app, contribution.plugin, contribution.item)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    # The last added is the outermost: the request id and metrics first, then the fast lane
    # (token callers the gate already let through), then the browser's session.
    app.add_middleware(
        SessionMiddleware,
        secret_key=sessions.secret_key(settings),
        session_cookie=sessions.COOKIE_NAME,
        max_age=settings.auth.session_max_hours * 3600,
        same_site="lax",
        https_only=sessions.cookie_is_secure(settings),
    )
    app.add_middleware(FastLane, fastapi=app, lanes=lanes)
    app.add_middleware(RequestMiddleware, metrics=app.state.metrics)
    return app


def check_oidc(app: FastAPI) -> None:
    """The sign-in provider's discovery document is reachable and names our issuer."""
    from portal.auth.oidc import fetch_metadata_now

    fetch_metadata_now(app.state.settings.auth.oidc)


def _collect_actions(plugins: Plugins) -> dict[str, Action]:
    actions: dict[str, Action] = {}
    owners: dict[str, str] = {}
    for contribution in plugins.collect("paved_actions", Action):
        action = contribution.item
        if action.name in actions:
            plugins.degrade(
                contribution.plugin,
                f"action {action.name} is already declared by {owners[action.name]}",
            )
            continue
        actions[action.name] = action
        owners[action.name] = contribution.plugin
    return actions


def collect_policy_folders(settings: Settings, plugins: Plugins) -> list[Path]:
    """Paved's policies, each plugin's folder whose Rego compiles, and the settings' extras.

    A plugin whose Rego does not compile is degraded and its folder left out, so one
    broken plugin cannot stop every decision.
    """
    usable = []
    for contribution in plugins.collect("paved_policy_dirs", (str, Path)):
        folder = Path(contribution.item)
        try:
            build_engine(PolicySource.read([POLICY_DIR, folder]))
        except ConfigurationError as exc:
            plugins.degrade(contribution.plugin, f"its policies were not loaded: {exc}")
            continue
        usable.append(folder)
    return policy_folders(settings.policy.dirs, usable)


def collect_task_handlers(plugins: Plugins) -> dict[str, TaskHandler]:
    handlers: dict[str, TaskHandler] = {}
    for contribution in plugins.collect("paved_task_handlers", TaskHandler):
        handler = contribution.item
        if handler.kind in handlers:
            plugins.degrade(contribution.plugin, f"task kind {handler.kind} is already taken")
            continue
        handlers[handler.kind] = handler
    return handlers


def _include_router(app: FastAPI, plugin: str, router: APIRouter) -> bool:
    """Include a plugin's router only if every route declares a known action; returns
    whether it was."""
    actions: dict[str, Action] = app.state.actions
    for route in walk_routes(router.routes):
        action = route_action(route)
        path = route.path
        if is_ungated(route):
            problem = f"route {path} is marked ungated; only the core's own probes may be"
        elif action is None:
            problem = f"route {path} declares no action; expected requires(<action>)"
        elif action is not None and action.name not in actions:
            problem = f"route {path} requires {action.name}, which no plugin declares"
        else:
            continue
        app.state.plugins.degrade(plugin, problem + "; its routes were not added")
        log.error("plugin %s: %s", plugin, problem)
        return False
    try:
        app.include_router(router)
    except Exception as exc:
        log.exception("plugin %s: its routes could not be added", plugin)
        app.state.plugins.degrade(plugin, f"its routes could not be added: {exc}")
        return False
    return True


def _include_first(app: FastAPI, plugin: str, router: APIRouter, others: list[APIRouter]) -> bool:
    """Include a ``hot_path`` router ahead of every route, unless one of its paths could
    also be another route's: then the order would decide which answers, and it is refused.
    Returns whether it was included."""
    taken = [r.path for other in others for r in walk_routes(other.routes) if r.path is not None]
    taken += [STATIC_PATH, STATIC_PATH + "/{path:path}"]
    paths = [r.path for r in walk_routes(router.routes) if r.path is not None]
    clashes = overlapping(paths, taken)
    if clashes:
        path, other = clashes[0]
        problem = (
            f"route {path} is marked hot_path but {other} could answer the same requests; "
            "its routes were not added"
        )
        app.state.plugins.degrade(plugin, problem)
        log.error("plugin %s: %s", plugin, problem)
        return False
    return _include_router(app, plugin, router)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    plugins: Plugins = app.state.plugins
    plugins.call("paved_startup", app=app, settings=settings)
    await run_in_threadpool(record_version, app.state.engine, app.state.policy_folders)
    watcher = None
    if settings.policy.reload:
        watcher = PolicyWatcher(
            app.state.policy,
            app.state.policy_folders,
            on_reload=partial(record_version, app.state.engine, app.state.policy_folders),
        )
        watcher.start()
    if settings.tasks.in_process_worker:
        worker = Worker(
            app.state.engine,
            list(app.state.task_handlers.values()),
            settings.tasks,
            portal_settings=settings,
            authority=Authority(app.state.policy, plugins, app.state.engine, settings),
        )
        worker.start()
        app.state.worker = worker
    try:
        yield {}
    finally:
        if app.state.worker is not None:
            # Joining the worker can take seconds; the event loop must not wait on it.
            await run_in_threadpool(app.state.worker.stop)
            app.state.worker = None
        if watcher is not None:
            watcher.stop()
        for plugin_name, closing in plugins.call("paved_shutdown", app=app):
            if inspect.isawaitable(closing):  # what must end on the event loop (connections)
                try:
                    await closing
                except Exception:
                    log.exception("plugin %s failed to shut down", plugin_name)
        app.state.policy.close()
        app.state.engine.dispose()
