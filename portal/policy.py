"""The policy engine: Rego decides every action, in this process or on an OPA server.

The decision is ``data.paved.authz.decision`` for the input document the gate builds
(see ARCHITECTURE.md). Whatever goes wrong (the engine is unreachable, slow, or answers
something that is not a decision) becomes ``EngineUnavailable``: the gate then denies
with 503. Nothing here ever allows by default.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import regorus

from portal.errors import ConfigurationError, EngineUnavailable

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
DECISION_RULE = "data.paved.authz.decision"
DECISION_PATH = "/v1/data/paved/authz/decision"
DECISION_EXPECTED = '{"allow": <bool>, "reasons": [<string>, ...]}'

log = logging.getLogger("paved.policy")


@dataclass(frozen=True)
class Decision:
    """What the policy said, and why, in words for the person who asked."""

    allow: bool
    reasons: tuple[str, ...] = ()


def parse_decision(result: Any) -> Decision:
    """Accept only a well-formed decision; anything else fails closed."""
    if (
        isinstance(result, dict)
        and isinstance(result.get("allow"), bool)
        and isinstance(result.get("reasons", []), list)
        and all(isinstance(reason, str) for reason in result.get("reasons", []))
    ):
        return Decision(result["allow"], tuple(result.get("reasons", [])))
    shown = json.dumps(result, default=str)[:200]
    raise EngineUnavailable(f"the policy answered {shown}; expected {DECISION_EXPECTED}")


def _first_line(exc: BaseException) -> str:
    # regorus appends a Rust backtrace to its messages; the first paragraph is the reason.
    return str(exc).split("\n\nStack backtrace")[0].strip().splitlines()[0]


@dataclass(frozen=True)
class PolicySource:
    """Rego modules, their tests and their data, read from folders (core first)."""

    modules: dict[str, str] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, folders: Sequence[Path]) -> PolicySource:
        modules: dict[str, str] = {}
        tests: dict[str, str] = {}
        data: dict[str, Any] = {}
        for folder in folders:
            if not folder.is_dir():
                raise ConfigurationError(f"policy folder {folder} does not exist")
            for path in sorted(folder.rglob("*.rego")):
                target = tests if path.name.endswith("_test.rego") else modules
                target[str(path)] = path.read_text()
            for path in sorted(folder.rglob("data.json")):
                try:
                    _merge(data, json.loads(path.read_text()))
                except json.JSONDecodeError as exc:
                    raise ConfigurationError(f"{path} is not JSON: {exc}") from None
        return cls(modules, tests, data)

    def fingerprint(self) -> int:
        return hash(
            (
                tuple(self.modules.items()),
                tuple(self.tests.items()),
                json.dumps(self.data, sort_keys=True),
            )
        )


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    """Deep-merge ``extra`` into ``into``; lists are joined, so a plugin can add actions to
    a role without repeating the core's."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + [item for item in value if item not in into[key]]
        else:
            into[key] = value


def build_engine(source: PolicySource, *, with_tests: bool = False) -> regorus.Engine:
    """A regorus engine loaded with the source; raises ConfigurationError if Rego is invalid."""
    engine = regorus.Engine()
    files = {**source.modules, **(source.tests if with_tests else {})}
    for name, text in files.items():
        try:
            engine.add_policy(name, text)
        except Exception as exc:
            raise ConfigurationError(
                f"policy {name} does not compile: {_first_line(exc)}"
            ) from None
    engine.add_data(source.data)
    return engine


class PolicyEngine(Protocol):
    """Where decisions come from: in-process Rego or an OPA server."""

    def decide(self, document: dict[str, Any]) -> Decision: ...

    def reload(self) -> None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


# Each thread's regorus engines, for every InProcessEngine. It lives as long as the process,
# so an engine is only ever dropped by the thread that made it (regorus panics otherwise):
# when that thread ends, or when it finds its owner gone.
_thread_engines = threading.local()
_engine_keys = itertools.count()


# Builtins whose answer can change between two evaluations of the same input: policies
# that call one are evaluated every time instead of remembered.
_VOLATILE = re.compile(r"\b(time\.now_ns|http\.send|rand\.|uuid\.|opa\.runtime|net\.)")
MEMO_SIZE = 10_000


class InProcessEngine:
    """Rego evaluated by regorus in this process (50-150 µs a decision).

    regorus engines are bound to the thread that made them, so each thread keeps its own,
    and re-creates it after ``reload``. A decision depends only on its input and the
    policies, so the last ``MEMO_SIZE`` are remembered until the next reload, unless a
    policy reads the clock, the network or randomness.
    """

    def __init__(self, read_source: Callable[[], PolicySource]) -> None:
        self._read_source = read_source
        self._source = read_source()
        build_engine(self._source)  # refuse invalid Rego at start-up, not on first request
        self._generation = 0
        self._key = next(_engine_keys)
        self._memo: dict[str, Decision] = {}
        self._memoizes = _is_deterministic(self._source)

    def describe(self) -> str:
        return f"in-process Rego ({len(self._source.modules)} modules)"

    def close(self) -> None:
        """Nothing to release: each thread drops its engines itself."""

    def reload(self) -> None:
        """Re-read the policies; on invalid Rego keep the old ones and raise."""
        source = self._read_source()
        if source.fingerprint() == self._source.fingerprint():
            return
        build_engine(source)
        self._source, self._generation = source, self._generation + 1
        self._memo, self._memoizes = {}, _is_deterministic(source)
        log.info("policies reloaded (%d modules)", len(source.modules))

    def _engine(self) -> regorus.Engine:
        engines: dict[int, tuple[int, Any, weakref.ref[InProcessEngine]]] | None = getattr(
            _thread_engines, "engines", None
        )
        if engines is None:
            engines = _thread_engines.engines = {}
        entry = engines.get(self._key)
        if entry is not None and entry[0] == self._generation:
            return entry[1]
        for key in [key for key, (_, _, owner) in engines.items() if owner() is None]:
            del engines[key]
        engine = build_engine(self._source)
        engines[self._key] = (self._generation, engine, weakref.ref(self))
        return engine

    def decide(self, document: dict[str, Any]) -> Decision:
        key = json.dumps(document, sort_keys=True, default=str) if self._memoizes else ""
        remembered = self._memo.get(key) if key else None
        if remembered is not None:
            return remembered
        memo = self._memo
        try:
            engine = self._engine()
            engine.set_input(document)
            result = engine.eval_rule(DECISION_RULE)
        except Exception as exc:
            raise EngineUnavailable(f"the policy engine failed: {_first_line(exc)}") from None
        decision = parse_decision(result)
        if key:
            if len(memo) >= MEMO_SIZE:
                memo.clear()  # simpler than LRU, and the hot inputs come straight back
            memo[key] = decision
        return decision


def _is_deterministic(source: PolicySource) -> bool:
    return not any(_VOLATILE.search(text) for text in source.modules.values())


class RemoteEngine:
    """An OPA server, asked through its REST Data API with a timeout."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url.rstrip("/")
        import httpx  # only here: it costs start-up time the in-process engine does without

        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def describe(self) -> str:
        return f"OPA at {self.url}"

    def reload(self) -> None:
        """An OPA server loads its own bundles; nothing to do here."""

    def decide(self, document: dict[str, Any]) -> Decision:
        import httpx

        try:
            response = self._client.post(DECISION_PATH, json={"input": document})
            response.raise_for_status()
            body = response.json()
        except httpx.TimeoutException:
            raise EngineUnavailable(f"OPA at {self.url} did not answer in time") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineUnavailable(f"OPA at {self.url} failed: {exc}") from None
        if "result" not in body:
            raise EngineUnavailable(
                f"OPA at {self.url} has no {DECISION_RULE}; expected Paved's policies loaded"
            )
        return parse_decision(body["result"])

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class PolicyTestResult:
    file: str
    name: str
    passed: bool
    error: str | None = None


_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)


def run_policy_tests(source: PolicySource) -> list[PolicyTestResult]:
    """Evaluate every ``test_`` rule of every ``*_test.rego``; true passes, as in ``opa test``."""
    engine = build_engine(source, with_tests=True)
    engine.set_input({})
    results = []
    for file, text in source.tests.items():
        package = _PACKAGE.search(text)
        if package is None:
            results.append(PolicyTestResult(file, "<file>", False, "no package line"))
            continue
        for name in dict.fromkeys(_TEST_RULE.findall(text)):
            try:
                value = engine.eval_rule(f"data.{package.group(1)}.{name}")
            except Exception as exc:
                results.append(PolicyTestResult(file, name, False, _first_line(exc)))
                continue
            results.append(PolicyTestResult(file, name, value is True))
    return results


def policy_folders(extra: Sequence[Path], plugin_folders: Sequence[Path]) -> list[Path]:
    """Paved's own policies first, then the plugins', then the settings' extra folders."""
    return [POLICY_DIR, *plugin_folders, *extra]


def make_engine(
    *, engine_url: str | None, timeout: float, folders: Sequence[Path]
) -> InProcessEngine | RemoteEngine:
    if engine_url:
        return RemoteEngine(engine_url, timeout=timeout)
    return InProcessEngine(lambda: PolicySource.read(folders))


class PolicyWatcher:
    """Re-reads the policies when a file under the folders changes (development only)."""

    def __init__(
        self,
        engine: PolicyEngine,
        folders: Sequence[Path],
        *,
        every: float = 1.0,
        on_reload: Callable[[], object] | None = None,
    ):
        self.engine, self.folders, self.every = engine, list(folders), every
        self.on_reload = on_reload
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="policy-watcher", daemon=True)

    def _stamp(self) -> tuple[tuple[str, float], ...]:
        return tuple(
            (str(path), path.stat().st_mtime)
            for folder in self.folders
            for path in sorted(folder.rglob("*"))
            if path.suffix in {".rego", ".json"}
        )

    def _watch(self) -> None:
        seen = self._stamp()
        while not self._stop.wait(self.every):
            stamp = self._stamp()
            if stamp == seen:
                continue
            seen = stamp
            try:
                self.engine.reload()
            except ConfigurationError as exc:
                log.error("policies not reloaded, the previous ones stay in force: %s", exc)
                continue
            if self.on_reload is not None:
                self.on_reload()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
