"""Finding plugins through entry points, calling their hooks, and containing their failures."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar, cast

import pluggy

from portal import hookspecs

ENTRY_POINT_GROUP = "paved.plugins"

log = logging.getLogger("paved.plugins")
Built = TypeVar("Built")


class PluginStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # loaded, but at least one of its hooks raised
    FAILED = "failed"  # could not be loaded at all
    DISABLED = "disabled"  # turned off in settings


@dataclass
class PluginRecord:
    """What the portal knows about one plugin, as shown on ``/admin/plugins``."""

    name: str
    target: str
    distribution: str | None = None
    version: str | None = None
    status: PluginStatus = PluginStatus.OK
    hooks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def is_healthy(self) -> bool:
        return self.status in {PluginStatus.OK, PluginStatus.DISABLED}


@dataclass(frozen=True)
class Contribution:
    """One item a plugin returned from a contribution hook, with who returned it."""

    plugin: str
    item: Any


class Plugins:
    """The loaded plugins; every hook call goes through here so failures stay contained."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("paved")
        self.manager.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        # What build_once made of the contributions, by key; emptied when plugins change.
        self._built: dict[str, Any] = {}
        self._building = threading.RLock()

    @classmethod
    def discover(
        cls, *, disabled: Iterable[str] = (), found: Iterable[EntryPoint] | None = None
    ) -> Plugins:
        """Load every plugin of the ``paved.plugins`` group (or ``found``), in name order."""
        plugins = cls()
        skipped = set(disabled)
        points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
        for point in sorted(points, key=lambda p: p.name):
            plugins.load(point, is_disabled=point.name in skipped)
        return plugins

    def load(self, point: EntryPoint, *, is_disabled: bool = False) -> PluginRecord:
        """Import and register one entry point; a second plugin with a name already taken
        is recorded as failed under ``"<name> (<target>)"`` and not imported."""
        dist = point.dist
        record = PluginRecord(
            name=point.name,
            target=point.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )
        if point.name in self.records:
            record.status = PluginStatus.FAILED
            record.problems.append(
                f"the name {point.name!r} is already used by "
                f"{self.records[point.name].target}; expected a unique entry-point name"
            )
            log.error("plugin %s not loaded: %s", point.name, record.problems[-1])
            self.records[f"{point.name} ({point.value})"] = record
            return record
        self.records[point.name] = record
        if is_disabled:
            record.status = PluginStatus.DISABLED
            return record
        try:
            plugin = point.load()
        except Exception as exc:
            return self._fail(record, f"cannot import {point.value}: {type(exc).__name__}: {exc}")
        return self.register(plugin, record)

    def register(self, plugin: object, record: PluginRecord) -> PluginRecord:
        """Register a loaded plugin object; refuse it whole if any hookimpl is malformed."""
        self.records[record.name] = record
        try:
            self.manager.register(plugin, name=record.name)
        except Exception as exc:
            return self._fail(record, f"its hooks do not match the contract: {exc}")
        callers = self.manager.get_hookcallers(plugin) or []
        unknown = sorted(caller.name for caller in callers if not caller.has_spec())
        if unknown:
            self.manager.unregister(plugin)
            return self._fail(
                record,
                f"implements unknown hooks {', '.join(unknown)}; expected hooks "
                "defined in portal/hookspecs.py",
            )
        # Hooks run one by one in plugin-name order (see ``call``), so pluggy's ordering
        # and wrapping options would be silently ignored: refuse them instead.
        ordered = sorted(
            impl.function.__name__
            for caller in callers
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin
            and (impl.tryfirst or impl.trylast or impl.hookwrapper or impl.wrapper)
        )
        if ordered:
            self.manager.unregister(plugin)
            return self._fail(
                record,
                f"uses tryfirst, trylast or wrappers on {', '.join(ordered)}; expected plain "
                "@hookimpl (Paved calls plugins in name order)",
            )
        record.hooks = sorted(c.name for c in self.manager.get_hookcallers(plugin) or [])
        self._forget_built()
        return record

    def unregister(self, name: str) -> None:
        plugin = self.manager.get_plugin(name)
        if plugin is not None:
            self.manager.unregister(plugin)
        self.records.pop(name, None)
        self._forget_built()

    def build_once(self, key: str, build: Callable[[], Built]) -> Built:
        """What ``build`` makes of the plugins' contributions (e.g. a registry of the
        actions they add), built on first use and kept under ``key``.

        For contributions read while serving, in requests and in tasks alike: their hook is
        called once per set of plugins, not on every use, so a plugin a contribution
        degrades is degraded once. Registering or unregistering a plugin builds it again.
        """
        with self._building:
            if key not in self._built:
                self._built[key] = build()
            return cast(Built, self._built[key])

    def _forget_built(self) -> None:
        with self._building:
            self._built.clear()

    def _fail(self, record: PluginRecord, problem: str) -> PluginRecord:
        record.status = PluginStatus.FAILED
        record.problems.append(problem)
        # Called from an except block for import and registration errors: keep the traceback.
        log.error(
            "plugin %s not loaded: %s", record.name, problem, exc_info=sys.exc_info()[0] is not None
        )
        return record

    def degrade(self, name: str, problem: str) -> None:
        """Mark a loaded plugin degraded; the portal goes on without that contribution.
        A problem already recorded for the plugin is not added again."""
        record = self.records.setdefault(name, PluginRecord(name=name, target="unknown"))
        record.status = PluginStatus.DEGRADED
        if problem not in record.problems:
            record.problems.append(problem)

    def _implementations(self, hook_name: str) -> list[tuple[str, Any]]:
        caller = getattr(self.manager.hook, hook_name)
        # pluggy keeps implementations last-registered-first; plugins run in name order.
        impls = sorted(caller.get_hookimpls(), key=lambda impl: impl.plugin_name)
        return [(impl.plugin_name, impl) for impl in impls]

    def implements(
        self, hook_name: str, *, only: Callable[[Callable[..., Any]], bool] | None = None
    ) -> bool:
        """Whether any loaded plugin implements the hook (with an implementation ``only``
        accepts, when given)."""
        return any(
            only is None or only(impl.function)
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls()
        )

    def call(
        self,
        hook_name: str,
        *,
        each: Callable[[], AbstractContextManager[Any]] | None = None,
        failed: list[str] | None = None,
        only: Callable[[Callable[..., Any]], bool] | None = None,
        **kwargs: Any,
    ) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, in plugin-name order.

        One that raises is logged with its traceback and its plugin degraded; the others
        still run. ``each`` wraps every single call (e.g. ``session.begin_nested``, so a
        failing plugin's writes are rolled back alone). The names of the plugins that
        raised are appended to ``failed`` when given; only the implementations ``only``
        accepts are called, when given.
        """
        results = []
        for plugin_name, impl in self._implementations(hook_name):
            if only is not None and not only(impl.function):
                continue
            try:
                with each() if each else nullcontext():
                    result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:
                log.exception("plugin %s failed in %s", plugin_name, hook_name)
                self.degrade(plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}")
                if failed is not None:
                    failed.append(plugin_name)
                continue
            results.append((plugin_name, result))
        return results

    def collect(
        self, hook_name: str, expected: type | tuple[type, ...], **kwargs: Any
    ) -> list[Contribution]:
        """The items all plugins contribute through a list-returning hook, type-checked."""
        items: list[Contribution] = []
        for plugin_name, result in self.call(hook_name, **kwargs):
            if result is None:
                continue
            if not isinstance(result, list | tuple):
                self.degrade(
                    plugin_name,
                    f"{hook_name} returned {type(result).__name__}; expected a list",
                )
                continue
            wrong = [item for item in result if not isinstance(item, expected)]
            if wrong:
                names = expected if isinstance(expected, tuple) else (expected,)
                self.degrade(
                    plugin_name,
                    f"{hook_name} returned {type(wrong[0]).__name__}; expected "
                    + " or ".join(t.__name__ for t in names),
                )
                continue
            items.extend(Contribution(plugin_name, item) for item in result)
        return items

    def describe(self) -> list[PluginRecord]:
        return sorted(self.records.values(), key=lambda record: record.name)

    @property
    def is_healthy(self) -> bool:
        return all(record.is_healthy for record in self.records.values())
