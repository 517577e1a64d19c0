"""The catalog at 10,000 and 100,000 entities: query latency over HTTP and ingestion speed.

A realistic catalog is generated (seeded) into a temporary folder as multi-document YAML
files: an organisation of groups and users, domains, systems, components (services,
websites, libraries) providing and consuming APIs and depending on resources, APIs with
small inline definitions, and Location entities pointing at the files. For each size and
backend it is ingested from one registered location through ``catalog.service.add_location``
in one transaction, then the real portal is served by uvicorn in its own process and each
query is sent over HTTP with an API token, round-robin, after a warm-up; medians and p95
are printed.

Targets (issue: Backstage's catalog backend 4.0.0 on PostgreSQL, 11,000 entities, 2 cores):
on PostgreSQL every query at least 3x faster at 10,000 entities than Backstage's median,
none more than 2x slower at 100,000 than at 10,000, and 100,000 entities ingested in under
60 s. SQLite runs the same measurements; its verdicts are shown for information only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Run as a script, this folder comes first on sys.path, where this very file would hide the
# catalog package: the catalog and portal modules are imported inside the functions.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

SEED = 11
TARGET_SPEEDUP = 3.0
TARGET_GROWTH = 2.0
TARGET_INGEST_SECONDS = 60.0
TARGET_INGEST_SIZE = 100_000
BACKSTAGE_INGEST_RATE = 100  # entities/s, roughly
# Backstage catalog backend 4.0.0, PostgreSQL, 11,000 entities, median ms.
BACKSTAGE_MS = {
    "by-query kind=component": 10.4,
    "two ORed filters": 33.0,
    "ordered by metadata.name": 22.0,
    "full-text": 5.2,
    "by-name": 1.2,
    "by-refs, 100 refs": 2.5,
    "facets on spec.type": 6.2,
    "next cursor page": 2.1,
}
# Not judged: what any request costs here (uvicorn, middleware, no gate, no database).
FLOOR = "HTTP floor: GET /healthz"
FULL_TEXT_WORD = "ledger"
MIN_SAMPLES = 10
VARIANTS = 50  # names asked by-name, in turn; sets of refs asked by-refs
DOCUMENTS_PER_FILE = 50
TARGETS_PER_LOCATION = 50
WORDS = [
    "atlas",
    "beacon",
    "billing",
    "cart",
    "checkout",
    "cobalt",
    "comet",
    "delta",
    "ember",
    "falcon",
    "fraud",
    "harbor",
    "helix",
    "inventory",
    "ledger",
    "lumen",
    "nebula",
    "orbit",
    "payments",
    "pricing",
    "quartz",
    "ranking",
    "relay",
    "search",
    "sentry",
    "shipping",
    "signal",
    "summit",
    "tide",
    "vector",
    "zephyr",
    "aurora",
    "basalt",
    "cinder",
    "drift",
    "forecast",
    "granite",
    "insight",
    "juniper",
    "kestrel",
    "lattice",
    "meadow",
    "nimbus",
    "onyx",
    "prism",
    "raven",
    "sable",
    "tundra",
    "willow",
]
FIRST_NAMES = [
    "ada",
    "alan",
    "barbara",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "john",
    "ken",
    "linus",
    "margaret",
]
LAST_NAMES = [
    "allen",
    "hopper",
    "knuth",
    "lamport",
    "liskov",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "wirth",
]
TAGS = [
    "python",
    "java",
    "go",
    "typescript",
    "rust",
    "kafka",
    "grpc",
    "rest",
    "ml",
    "payments",
    "search",
    "data",
]


# -- The generated catalog ------------------------------------------------------------------


@dataclass
class Catalog:
    """A generated catalog on disk, and what the queries need to know about it."""

    root: Path
    counts: dict[str, int]
    component_names: list[str]
    refs: list[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block style, multi-line strings as ``|`` blocks, as people write catalog files."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def _openapi(name: str, rng: random.Random) -> str:
    path = rng.choice(WORDS)
    return (
        "openapi: 3.0.3\n"
        f"info:\n  title: {name}\n  version: 1.{rng.randint(0, 9)}.0\n"
        f"paths:\n  /{path}:\n    get:\n      summary: List {path}\n"
        "      responses:\n        '200':\n          description: OK\n"
    )


def _grpc(name: str, rng: random.Random) -> str:
    message = rng.choice(WORDS).title()
    return (
        'syntax = "proto3";\n'
        f"service {message}Service {{\n  rpc Get{message} (Get{message}Request) "
        f"returns ({message});\n}}\n"
    )


def _asyncapi(name: str, rng: random.Random) -> str:
    return (
        f"asyncapi: 2.6.0\ninfo:\n  title: {name}\n  version: 1.0.0\n"
        f"channels:\n  {rng.choice(WORDS)}.events:\n    subscribe:\n"
        "      message:\n        payload:\n          type: object\n"
    )


def _graphql(name: str, rng: random.Random) -> str:
    kind = rng.choice(WORDS).title()
    return (
        f"type {kind} {{\n  id: ID!\n  name: String\n}}\n"
        f"type Query {{\n  {kind.lower()}s: [{kind}]\n}}\n"
    )


API_TYPES = (("openapi", _openapi, 6), ("grpc", _grpc, 2), ("asyncapi", _asyncapi, 1))
API_TYPES += (("graphql", _graphql, 1),)


def _entity(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def _phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _counts(size: int) -> dict[str, int]:
    """How many of each kind make ``size`` entities, Location entities included."""
    counts = {
        "Group": max(5, size // 100),
        "User": size // 8,
        "Domain": max(2, size // 2000),
        "System": max(3, size // 80),
        "API": size // 6,
        "Resource": size // 12,
    }
    locations = 1
    for _ in range(5):  # the files (so the locations) depend on the components: settle
        counts["Component"] = size - sum(counts.values()) - locations
        files = sum(math.ceil(count / DOCUMENTS_PER_FILE) for count in counts.values())
        locations = 1 + math.ceil(files / TARGETS_PER_LOCATION)
    counts["Component"] = size - sum(v for k, v in counts.items() if k != "Component") - locations
    counts["Location"] = locations
    return counts


def generate(folder: Path, size: int, seed: int = SEED) -> Catalog:
    """Write a catalog of ``size`` entities under ``folder``; the same seed, the same files."""
    rng = random.Random(seed * 1_000_003 + size)
    counts = _counts(size)
    by_kind: dict[str, list[dict[str, Any]]] = {}

    departments = max(2, counts["Group"] // 10)
    teams = [f"team-{rng.choice(WORDS)}-{n}" for n in range(counts["Group"] - departments - 1)]
    department_names = [f"dept-{rng.choice(WORDS)}-{n}" for n in range(departments)]
    team_parent = {team: rng.choice(department_names) for team in teams}
    users = [
        f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}-{n}" for n in range(counts["User"])
    ]
    memberships = {user: rng.sample(teams, rng.choice((1, 1, 1, 2))) for user in users}
    groups = [
        _entity(
            "Group",
            "acme",
            {"type": "organization", "children": department_names},
            title="ACME",
            description="The whole company.",
        )
    ]
    for department in department_names:
        children = [team for team in teams if team_parent[team] == department]
        spec = {"type": "department", "parent": "acme", "children": children}
        groups.append(_entity("Group", department, spec, title=department.title()))
    for team in teams:
        spec = {
            "type": "team",
            "parent": team_parent[team],
            "children": [],
            "profile": {"displayName": team.replace("-", " ").title()},
        }
        groups.append(_entity("Group", team, spec, description=f"The {team} team."))
    by_kind["Group"] = groups
    by_kind["User"] = [
        _entity(
            "User",
            user,
            {
                "memberOf": memberships[user],
                "profile": {
                    "displayName": user.split("-")[0].replace(".", " ").title(),
                    "email": f"{user}@acme.example",
                },
            },
        )
        for user in users
    ]

    domains = [f"{rng.choice(WORDS)}-domain-{n}" for n in range(counts["Domain"])]
    by_kind["Domain"] = [
        _entity(
            "Domain",
            name,
            {"owner": rng.choice(department_names)},
            description=f"Everything about {_phrase(rng, 2)}.",
        )
        for name in domains
    ]
    systems = [f"{rng.choice(WORDS)}-system-{n}" for n in range(counts["System"])]
    by_kind["System"] = [
        _entity(
            "System",
            name,
            {"owner": rng.choice(teams), "domain": rng.choice(domains)},
            description=f"The {_phrase(rng, 2)} system.",
        )
        for name in systems
    ]

    apis = []
    api_names = [f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-api-{n}" for n in range(counts["API"])]
    weights = [weight for _, _, weight in API_TYPES]
    for name in api_names:
        type_, definition, _ = rng.choices(API_TYPES, weights)[0]
        spec = {
            "type": type_,
            "lifecycle": rng.choice(("production", "production", "experimental")),
            "owner": rng.choice(teams),
            "system": rng.choice(systems),
            "definition": definition(name, rng),
        }
        apis.append(_entity("API", name, spec, description=f"Read and write {_phrase(rng, 2)}."))
    by_kind["API"] = apis

    resource_types = ("database", "s3-bucket", "kafka-topic", "cache")
    resource_names = [f"{rng.choice(WORDS)}-store-{n}" for n in range(counts["Resource"])]
    by_kind["Resource"] = [
        _entity(
            "Resource",
            name,
            {
                "type": rng.choice(resource_types),
                "owner": rng.choice(teams),
                "system": rng.choice(systems),
            },
        )
        for name in resource_names
    ]

    components = []
    component_names: list[str] = []
    for n in range(counts["Component"]):
        type_ = rng.choice(("service", "service", "service", "website", "library"))
        suffix = {"service": "service", "website": "web", "library": "lib"}[type_]
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{suffix}-{n}"
        spec: dict[str, Any] = {
            "type": type_,
            "lifecycle": rng.choice(("production", "production", "experimental", "deprecated")),
            "owner": rng.choice(teams),
            "system": rng.choice(systems),
        }
        if type_ == "service" and api_names:
            spec["providesApis"] = rng.sample(api_names, rng.randint(1, 2))
        if api_names and rng.random() < 0.7:
            spec["consumesApis"] = rng.sample(api_names, rng.randint(1, 3))
        depends = [f"resource:{r}" for r in rng.sample(resource_names, rng.randint(0, 2))]
        if component_names and rng.random() < 0.3:
            depends.append(f"component:{rng.choice(component_names)}")
        if depends:
            spec["dependsOn"] = depends
        team = spec["owner"]
        components.append(
            _entity(
                "Component",
                name,
                spec,
                title=name.replace("-", " ").title(),
                description=f"Handles {_phrase(rng, 3)} for {team}.",
                tags=rng.sample(TAGS, rng.randint(1, 3)),
                annotations={
                    "github.com/project-slug": f"acme/{name}",
                    "backstage.io/techdocs-ref": "dir:.",
                },
                links=[{"url": f"https://runbooks.acme.example/{name}", "title": "Runbook"}],
            )
        )
        component_names.append(name)
    by_kind["Component"] = components

    entity_files: list[str] = []
    (folder / "entities").mkdir(parents=True)
    for kind, entities in by_kind.items():
        for start in range(0, len(entities), DOCUMENTS_PER_FILE):
            relative = f"entities/{kind.lower()}-{start // DOCUMENTS_PER_FILE:05}.yaml"
            chunk = entities[start : start + DOCUMENTS_PER_FILE]
            (folder / relative).write_text(
                yaml.dump_all(chunk, Dumper=_Dumper, sort_keys=False, width=100)
            )
            entity_files.append(relative)
    (folder / "locations").mkdir()
    location_files = []
    for start in range(0, len(entity_files), TARGETS_PER_LOCATION):
        number = start // TARGETS_PER_LOCATION
        targets = [f"../{path}" for path in entity_files[start : start + TARGETS_PER_LOCATION]]
        location = _entity("Location", f"part-{number:04}", {"type": "file", "targets": targets})
        relative = f"locations/part-{number:04}.yaml"
        (folder / relative).write_text(yaml.dump(location, Dumper=_Dumper, sort_keys=False))
        location_files.append(f"./{relative}")
    root = folder / "catalog-info.yaml"
    root.write_text(
        yaml.dump(
            _entity("Location", "acme-catalog", {"type": "file", "targets": location_files}),
            Dumper=_Dumper,
            sort_keys=False,
        )
    )
    assert len(location_files) + 1 == counts["Location"], (location_files, counts)
    refs = [
        f"{entity['kind'].lower()}:default/{entity['metadata']['name']}"
        for entities in by_kind.values()
        for entity in entities
    ]
    return Catalog(root, counts, component_names, refs)


# -- Databases ------------------------------------------------------------------------------


def postgres_reachable(server: str) -> bool:
    try:
        admin = create_engine(
            make_url(server).set(drivername="postgresql+psycopg"),
            connect_args={"connect_timeout": 3},
        )
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
        admin.dispose()
    except Exception:  # any failure to connect means: no PostgreSQL for this run
        return False
    return True


def postgres_database(server: str) -> contextlib.AbstractContextManager[str]:
    """A fresh database on ``server`` for one run, dropped afterwards."""
    from portal.testing import scratch_postgres_database

    return scratch_postgres_database(server, "paved_bench")


@contextlib.contextmanager
def sqlite_database(scratch: Path) -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="db-", dir=scratch))
    yield f"sqlite:///{folder / 'paved.db'}"


# -- Ingestion ------------------------------------------------------------------------------


@dataclass
class Ingestion:
    entities: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.entities / self.seconds


@contextlib.contextmanager
def timed_phases(phases: dict[str, float]) -> Iterator[None]:
    """Time reading and applying inside ``add_location`` by wrapping the two steps it calls."""
    from catalog import ingestion

    originals = {"read": ingestion.read_tree, "write": ingestion.apply_reading}

    def timed(phase: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - started

        return run

    ingestion.read_tree = timed("read", originals["read"])  # type: ignore[assignment]
    ingestion.apply_reading = timed("write", originals["write"])  # type: ignore[assignment]
    try:
        yield
    finally:
        ingestion.read_tree = originals["read"]  # type: ignore[assignment]
        ingestion.apply_reading = originals["write"]  # type: ignore[assignment]


def prepare(database_url: str, data_dir: Path, catalog: Catalog) -> tuple[Ingestion, str]:
    """Migrate, register the catalog's root location in one transaction, and issue a token."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from catalog import service
    from catalog.models import CatalogEntity
    from portal import schema
    from portal.auth.tokens import issue_token
    from portal.db import create_database_engine
    from portal.settings import load_settings

    settings = load_settings(
        data_dir=data_dir, database_url=database_url, catalog={"file_roots": [catalog.root.parent]}
    )
    engine = create_database_engine(settings)
    schema.upgrade(engine)
    phases: dict[str, float] = {}
    with Session(engine) as session, timed_phases(phases):
        started = time.perf_counter()
        registered = service.add_location(
            session, "file", str(catalog.root), by="user:default/bench", settings=settings.catalog
        )
        committing = time.perf_counter()
        session.commit()
        ended = time.perf_counter()
    phases["commit"] = ended - committing
    if registered.problems:
        raise SystemExit(f"the generated catalog has problems: {registered.problems[:3]}")
    with Session(engine) as session:
        stored = session.exec(select(func.count()).select_from(CatalogEntity)).one()
        issued = issue_token(
            session, user_ref="user:default/bench", roles=["admin"], name="bench", created_by="b"
        )
        session.commit()
        secret = issued.secret
    # The catalog may add entities of its own (the registered location's generated one).
    if stored < catalog.total:
        raise SystemExit(f"{stored:,} entities stored, {catalog.total:,} generated")
    if engine.dialect.name == "postgresql":
        # The tables as autovacuum leaves them a minute after a bulk load (statistics, and
        # the visibility map index-only scans need), so the plans measured are the steady
        # state's, not those of tables the planner has never seen; and the load's pages
        # written out now, not by the checkpointer while queries are timed.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
            connection.execute(text("CHECKPOINT"))
    engine.dispose()
    return Ingestion(stored, ended - started, phases), secret


# -- Queries over HTTP ----------------------------------------------------------------------


@dataclass
class Timing:
    median: float
    p95: float
    samples: int


@dataclass
class Answer:
    method: str
    url: str
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    """HTTP/1.1 over one kept-alive socket, as lean as a load tool's client: the standard
    library's http.client spends 0.1 to 0.2 ms a request parsing headers, and httpx about
    0.7 ms, which would be counted as the portal's. Answers must carry Content-Length."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        host, _, port = urllib.parse.urlsplit(base).netloc.partition(":")
        self.host = host
        self.socket = socket.create_connection((host, int(port or 80)))
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.buffer = b""

    def get(self, path: str, params: dict[str, Any] | None = None) -> Answer:
        query = urllib.parse.urlencode(params or {}, doseq=True)
        return self._send("GET", f"{path}?{query}" if query else path, b"")

    def post(self, path: str, json_body: Any) -> Answer:
        return self._send("POST", path, json.dumps(json_body).encode())

    def _send(self, method: str, url: str, body: bytes) -> Answer:
        head = f"{method} {url} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.socket.sendall(head.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._received()
        response_head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = response_head.decode("latin-1").split("\r\n")
        fields = dict(line.split(":", 1) for line in lines[1:])
        length = int(next(v for k, v in fields.items() if k.lower() == "content-length"))
        while len(rest) < length:
            rest += self._received()
        self.buffer = rest[length:]
        return Answer(method, url, int(lines[0].split()[1]), rest[:length].decode())

    def _received(self) -> bytes:
        data = self.socket.recv(262144)
        if not data:
            raise ConnectionError("the portal closed the connection")
        return data

    def close(self) -> None:
        self.socket.close()


Request = Callable[[Client, int], Answer]


def serve(port: int, database_url: str, data_dir: str, file_root: str) -> None:
    """The server process: the real portal on this database."""
    import uvicorn

    from portal.app import create_app
    from portal.settings import load_settings

    settings = load_settings(
        data_dir=data_dir,
        database_url=database_url,
        log_level="warning",
        port=port,
        catalog={"file_roots": [file_root]},
    )
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


@contextlib.contextmanager
def served(database_url: str, data_dir: Path, file_root: Path) -> Iterator[str]:
    from portal.testing import wait_until_ready

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PAVED_TASKS__IN_PROCESS_WORKER": "false"}
    command = [sys.executable, __file__, "--serve", str(port), "--database-url", database_url]
    command += ["--data-dir", str(data_dir), "--file-root", str(file_root)]
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, server, timeout=60)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def _checked(response: Answer, *, at_least: int = 1) -> Answer:
    """Fail loudly rather than time an error or an empty answer."""
    if response.status_code != 200:
        raise SystemExit(
            f"{response.method} {response.url} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    document = response.json()
    items = document.get("items", [document]) if isinstance(document, dict) else document
    if len([item for item in items if item]) < at_least:
        raise SystemExit(f"{response.url} found nothing: {response.text[:300]}")
    return response


# What each answer must hold at least (items, or facets): checked after the timing.
AT_LEAST = {"by-refs, 100 refs": 100, "facets on spec.type": 1}


def requests_for(client: Client, catalog: Catalog) -> dict[str, Request]:
    """Each measured query as a request, the ``n``-th time it is sent."""
    rng = random.Random(SEED)
    names = rng.sample(catalog.component_names, VARIANTS)
    ref_sets = [rng.sample(catalog.refs, 100) for _ in range(VARIANTS // 5)]
    by_query = "/api/catalog/entities/by-query"
    first = _checked(client.get(by_query, params={"filter": "kind=component", "limit": 20}))
    cursor = first.json()["pageInfo"]["nextCursor"]
    assert cursor, "the first page of components has no next page"
    ored = ["kind=component,spec.type=service", "kind=api,spec.type=openapi"]
    return {
        "by-query kind=component": lambda c, _: c.get(
            by_query, params={"filter": "kind=component", "limit": 20}
        ),
        "two ORed filters": lambda c, _: c.get(by_query, params={"filter": ored, "limit": 20}),
        "ordered by metadata.name": lambda c, _: c.get(
            by_query, params={"orderField": "metadata.name,asc", "limit": 20}
        ),
        "full-text": lambda c, _: c.get(
            by_query, params={"fullTextFilterTerm": FULL_TEXT_WORD, "limit": 20}
        ),
        "by-name": lambda c, n: c.get(
            f"/api/catalog/entities/by-name/component/default/{names[n % len(names)]}"
        ),
        "by-refs, 100 refs": lambda c, n: c.post(
            "/api/catalog/entities/by-refs", {"entityRefs": ref_sets[n % len(ref_sets)]}
        ),
        "facets on spec.type": lambda c, _: c.get(
            "/api/catalog/entity-facets", params={"facet": "spec.type"}
        ),
        "next cursor page": lambda c, _: c.get(by_query, params={"cursor": cursor}),
        FLOOR: lambda c, _: c.get("/healthz"),
    }


def _timed(client: Client, name: str, request: Request, n: int, *, check: bool = False) -> float:
    """Milliseconds from sending the request to having the whole answer. Its status is
    checked after the clock stopped; with ``check``, also that it found something (reading
    the JSON takes the client long enough for the portal's process to fall idle, which the
    next request would pay for: the timed rounds go back to back, as a load tool's do)."""
    started = time.perf_counter()
    answer = request(client, n)
    elapsed = (time.perf_counter() - started) * 1000
    if check or answer.status_code != 200:
        _checked(answer, at_least=AT_LEAST.get(name, 1))
    return elapsed


def measure_queries(
    base: str, secret: str, catalog: Catalog, changed: Callable[[], None], args: Any
) -> tuple[dict[str, Timing], dict[str, Timing]]:
    """Warm: every query ``args.warmup`` times, then ``args.repeat`` timed rounds,
    round-robin (drift hits all alike). Cold: ``args.cold`` rounds, each query right after
    the catalog's generation was raised, so nothing is remembered and the database answers.
    Median and p95 in ms. A query that has had ``args.budget`` seconds and ``MIN_SAMPLES``
    timings stops early, so a slow one cannot stretch the run unbounded."""
    headers = {"Authorization": f"Bearer {secret}"}
    client = Client(base, headers)
    with contextlib.closing(client):
        requests = requests_for(client, catalog)
        warm: dict[str, list[float]] = {name: [] for name in requests}
        cold: dict[str, list[float]] = {name: [] for name in requests}
        # Every variant (each of the names, each set of refs) once and checked, then the
        # warm-up.
        for round_number in range(VARIANTS):
            for name, request in requests.items():
                _timed(client, name, request, round_number, check=True)
        for round_number in range(args.warmup + args.repeat):
            for name, request in requests.items():
                values = warm[name]
                if len(values) >= MIN_SAMPLES and sum(values) > args.budget * 1000:
                    continue
                elapsed = _timed(client, name, request, round_number)
                if round_number >= args.warmup:
                    values.append(elapsed)
        for round_number in range(args.cold):
            for name, request in requests.items():
                changed()
                cold[name].append(_timed(client, name, request, round_number))
    return _timings(warm), _timings(cold)


def _timings(samples: dict[str, list[float]]) -> dict[str, Timing]:
    timings = {}
    for name, values in samples.items():
        values.sort()
        p95 = values[max(0, math.ceil(len(values) * 0.95) - 1)]
        timings[name] = Timing(statistics.median(values), p95, len(values))
    return timings


def generation_raiser(database_url: str) -> Callable[[], None]:
    """Raise the catalog's generation as a change would (the portal sees it at once on
    SQLite, within a millisecond or so on PostgreSQL: wait a little to be sure)."""
    from sqlmodel import Session

    from catalog import generation
    from portal.db import create_database_engine
    from portal.settings import load_settings

    engine = create_database_engine(load_settings(database_url=database_url))

    def changed() -> None:
        with Session(engine) as session:
            generation.mark_changed(session)
            session.commit()
        if engine.dialect.name == "postgresql":
            time.sleep(0.02)

    return changed


# -- The run --------------------------------------------------------------------------------


@dataclass
class Result:
    ingestion: Ingestion
    timings: dict[str, Timing]  # warm: asked before, in this generation
    cold: dict[str, Timing]  # first asked since the catalog changed


def run_one(
    backend: str, database: contextlib.AbstractContextManager[str], catalog: Catalog, args: Any
) -> Result:
    with database as url, tempfile.TemporaryDirectory(prefix="paved-bench-data-") as data:
        load = os.getloadavg()[0]
        ingestion, secret = prepare(url, Path(data), catalog)
        phases = ", ".join(f"{name} {sec:.1f} s" for name, sec in ingestion.phases.items())
        print(
            f"  {backend:10} {catalog.total:>7,} entities ingested in {ingestion.seconds:6.1f} s "
            f"= {ingestion.rate:6,.0f} entities/s ({phases}; load average {load:.1f})",
            flush=True,
        )
        with served(url, Path(data), catalog.root.parent) as base:
            load = os.getloadavg()[0]
            timings, cold = measure_queries(base, secret, catalog, generation_raiser(url), args)
        # Other work on the machine shows in the figures: say how busy it was.
        print(
            f"  {'':10} queries measured (load average {load:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after)",
            flush=True,
        )
        return Result(ingestion, timings, cold)


def report(backend: str, results: dict[int, Result], sizes: list[int], repeat: int) -> bool:
    """Print the table for one backend; True when every target it can judge is met."""
    small, large = (sizes[0], sizes[-1]) if len(sizes) > 1 else (sizes[0], None)
    judged = backend == "postgresql"
    note = "" if judged else "  (targets are for PostgreSQL: verdicts for information only)"
    print(f"\n{backend}: warm (asked before, nothing changed since), median ms (p95){note}")
    header = f"  {'query':26} {'Backstage@11k':>13} {f'Paved@{small // 1000}k':>18} {'x faster':>9}"
    if large:
        header += f" {f'Paved@{large // 1000}k':>18} {f'{large // 1000}k/{small // 1000}k':>9}"
    print(header + "  verdict")
    floors = {size: results[size].timings.get(FLOOR) for size in sizes}
    shown = ", ".join(
        f"@{size // 1000}k {floor.median:.2f} ({floor.p95:.2f})"
        for size, floor in floors.items()
        if floor
    )
    print(f"  {FLOOR} (ungated, no database; not judged): {shown}")
    met = True
    for name, backstage in BACKSTAGE_MS.items():
        timing = results[small].timings[name]
        speedup = backstage / timing.median
        line = (
            f"  {name:26} {backstage:13.1f} {timing.median:9.2f} ({timing.p95:6.2f})"
            f" {speedup:8.1f}x"
        )
        problems = [] if speedup >= TARGET_SPEEDUP else [f"< {TARGET_SPEEDUP:g}x"]
        if large:
            grown = results[large].timings[name]
            growth = grown.median / timing.median
            line += f" {grown.median:9.2f} ({grown.p95:6.2f}) {growth:8.2f}x"
            if growth > TARGET_GROWTH:
                problems.append(f"{growth:.1f}x slower at {large // 1000}k")
        verdict = "meets" if not problems else "MISSES (" + "; ".join(problems) + ")"
        met &= not problems
        cut_short = [
            f"{found.samples} samples @{size // 1000}k"
            for size in sizes
            if (found := results[size].timings.get(name)) and found.samples < repeat
        ]
        print(f"{line}  {verdict}" + (f" [{', '.join(cut_short)}]" if cut_short else ""))
    print(
        "  cold, first asked since the catalog changed (the database answers), median ms: "
        + "; ".join(
            f"{name} "
            + " / ".join(
                f"{cold.median:.2f}@{size // 1000}k"
                for size in sizes
                if (cold := results[size].cold.get(name))
            )
            for name in BACKSTAGE_MS
        )
    )
    for size in sizes:
        ingestion = results[size].ingestion
        line = (
            f"  ingestion @{size // 1000}k: {ingestion.entities:,} entities in "
            f"{ingestion.seconds:.1f} s, {ingestion.rate:,.0f}/s "
            f"(Backstage ~{BACKSTAGE_INGEST_RATE}/s)"
        )
        if size == TARGET_INGEST_SIZE:
            is_met = ingestion.seconds < TARGET_INGEST_SECONDS
            met &= is_met
            line += f"  {'meets' if is_met else 'MISSES'} < {TARGET_INGEST_SECONDS:g} s"
        print(line)
    return met or not judged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--file-root", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated entity counts")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PAVED_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--repeat", type=int, default=50, help="timed rounds per query")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument(
        "--cold", type=int, default=10, help="rounds right after the catalog changed"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=15.0,
        help=f"seconds of timing per query and size, once it has {MIN_SAMPLES} samples",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.database_url, args.data_dir, args.file_root)
        return 0
    sizes = sorted(int(size) for size in args.sizes.split(","))
    backends = []
    if args.backend in ("postgres", "both"):
        if postgres_reachable(args.postgres_url):
            backends.append("postgresql")
        elif args.backend == "postgres":
            raise SystemExit(f"PostgreSQL is not reachable at {args.postgres_url}")
        else:
            print(f"PostgreSQL not reachable at {args.postgres_url}: SQLite only")
    if args.backend in ("sqlite", "both"):
        backends.append("sqlite")
    print(
        f"catalog: sizes {', '.join(f'{s:,}' for s in sizes)} on {', '.join(backends)}; "
        f"{args.warmup} warm-up + {args.repeat} timed rounds per query over HTTP "
        f"(uvicorn, 1 process, API token)"
    )
    results: dict[str, dict[int, Result]] = {backend: {} for backend in backends}
    with tempfile.TemporaryDirectory(prefix="paved-bench-catalog-") as scratch:
        for size in sizes:
            started = time.perf_counter()
            catalog = generate(Path(scratch) / f"catalog-{size}", size)
            kinds = ", ".join(f"{count:,} {kind}" for kind, count in catalog.counts.items())
            print(
                f"generated {catalog.total:,} entities in "
                f"{time.perf_counter() - started:.1f} s: {kinds}",
                flush=True,
            )
            for backend in backends:
                database = (
                    postgres_database(args.postgres_url)
                    if backend == "postgresql"
                    else sqlite_database(Path(scratch))
                )
                results[backend][size] = run_one(backend, database, catalog, args)
    met = True
    for backend in backends:
        met &= report(backend, results[backend], sizes, args.repeat)
    if "postgresql" not in backends:
        print("no PostgreSQL figures: the targets were not judged")
        return 0
    print("PASS" if met else "FAIL")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
