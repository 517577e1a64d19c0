"""The ``paved`` command line: serve, migrate, inspect settings and plugins, run workers."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
import yaml
from sqlalchemy.engine import Engine

from portal import schema
from portal.db import check_reachable, create_database_engine
from portal.errors import ConfigurationError, InvalidInput, PavedError
from portal.plugins import Plugins
from portal.settings import CONFIG_ENV, ROLES, Settings, load_settings

if TYPE_CHECKING:
    from sqlmodel import Session

    from portal.tracking import EmbeddedServer


def say(message: str, *, mark: str = "", colour: str | None = None) -> None:
    """One line to stderr for the person at the terminal (stdout is left for data)."""
    prefix = click.style(mark, fg=colour) + " " if mark else ""
    click.echo(prefix + message, err=True)


@contextmanager
def progress(message: str) -> Iterator[Any]:
    """A spinner for long work; rich is imported only when there is long work to show."""
    from rich.console import Console

    with Console(stderr=True).status(message) as status:
        yield status


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger while the command itself reports what it found."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


class PavedGroup(click.Group):
    """The core's commands plus those plugins contribute through ``paved_cli_commands``.

    Plugins are only looked for when a command name is not the core's (or for help), and
    after ``--config`` is applied, so ``paved config show`` never imports a plugin.
    """

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        found: dict[str, click.Command] | None = ctx.meta.get("paved.plugin_commands")
        if found is not None:
            return found
        if ctx.params.get("config"):
            os.environ[CONFIG_ENV] = str(ctx.params["config"])
        try:
            disabled = load_settings().plugins.disabled
        except ConfigurationError:
            disabled = []  # the command itself reports invalid settings
        with _quiet("paved.plugins"):  # `paved plugins list` reports broken plugins
            plugins = Plugins.discover(disabled=disabled)
            found = {}
            for contribution in plugins.collect("paved_cli_commands", click.Command):
                name = contribution.item.name or ""
                if name in self.commands or name in found:
                    plugins.degrade(contribution.plugin, f"CLI command {name!r} is taken")
                    continue
                found[name] = contribution.item
        ctx.meta["paved.plugin_commands"] = found
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self._plugin_commands(ctx).get(cmd_name)


@click.group(
    cls=PavedGroup,
    name="paved",
    help="Paved: the internal developer portal for ML teams.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV,
    help="Settings file to read instead of ./paved.yaml.",
)
def cli(config: Path | None) -> None:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)


@cli.group("db")
def db_cli() -> None:
    """Create and migrate the database."""


@cli.group("config")
def config_cli() -> None:
    """Inspect the effective settings."""


@cli.group("plugins")
def plugins_cli() -> None:
    """Inspect the installed plugins."""


@cli.group("audit")
def audit_cli() -> None:
    """Check the audit log."""


@cli.group("policy")
def policy_cli() -> None:
    """Test and try the Rego policies that decide every action."""


def _policy_folders() -> list[Path]:
    from portal.app import collect_policy_folders

    settings = load_settings()
    with _quiet("paved.plugins"):
        return collect_policy_folders(settings, _discover_plugins(settings))


@policy_cli.command("test")
@click.option("--verbose", "-v", is_flag=True, help="List every test, not only failures.")
def policy_test(verbose: bool) -> None:
    """Run every test_ rule of every *_test.rego (Paved's, the plugins', the extra folders)."""
    from portal.policy import PolicySource, run_policy_tests

    results = run_policy_tests(PolicySource.read(_policy_folders()))
    failed = [result for result in results if not result.passed]
    for result in results if verbose else failed:
        mark, colour = ("✓", "green") if result.passed else ("✗", "red")
        why = f": {result.error}" if result.error else ""
        say(f"{Path(result.file).name} {result.name}{why}", mark=mark, colour=colour)
    summary = f"{len(results) - len(failed)} of {len(results)} policy tests passed"
    if failed:
        say(summary, mark="✗", colour="red")
        raise SystemExit(1)
    say(summary, mark="✓", colour="green")


@policy_cli.command("eval")
@click.option(
    "--input",
    "-i",
    "input_file",
    required=True,
    type=click.File("r"),
    help="The input document (JSON file, or - for standard input).",
)
def policy_eval(input_file: Any) -> None:
    """Print the decision data.paved.authz.decision gives for an input document."""
    from portal.policy import make_engine

    try:
        document = json.load(input_file)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"--input is not JSON ({exc}); expected an input document "
            'like {"action": ..., "user": {...}, "resource": ...}'
        ) from None
    settings = load_settings()
    engine = make_engine(
        engine_url=settings.policy.engine_url,
        timeout=settings.policy.timeout,
        folders=_policy_folders(),
    )
    decision = engine.decide(document)
    click.echo(json.dumps({"allow": decision.allow, "reasons": list(decision.reasons)}, indent=2))


def _database(settings: Settings) -> Engine:
    engine = create_database_engine(settings)
    check_reachable(engine)
    return engine


def _require_head(engine: Engine) -> None:
    current, head = schema.current_revision(engine), schema.head_revision()
    if current != head:
        raise ConfigurationError(
            f"the database is at revision {current or 'none'} but this Paved expects {head}; "
            "expected a migrated database: run `paved db upgrade`"
        )


def _discover_plugins(settings: Settings) -> Plugins:
    return Plugins.discover(disabled=settings.plugins.disabled)


@cli.command()
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on.  [default: 8000]")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the embedded database and local state.  [default: .paved]",
)
@click.option("--demo", is_flag=True, help="Load demo data (once per database).")
def up(host: str | None, port: int | None, data_dir: Path | None, demo: bool) -> None:
    """Serve the portal; migrates an empty database first."""
    import uvicorn

    from portal.app import create_app
    from portal.demo import load_demo_data
    from portal.observability import configure_logging

    overrides = {"host": host, "port": port, "data_dir": data_dir}
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    engine = _database(settings)
    if schema.is_empty(engine):
        # A first start takes well under a second to migrate: no spinner (and no rich).
        schema.upgrade(engine)
        say(f"database created at revision {schema.head_revision()}", mark="✓", colour="green")
    else:
        _require_head(engine)
    plugins = _discover_plugins(settings)
    app = create_app(settings, plugins=plugins, engine=engine)
    if demo:
        with progress("Loading demo data…"):
            loaded = load_demo_data(engine, plugins, settings)
        say("demo data loaded" if loaded else "demo data already loaded", mark="✓", colour="green")
    _warn_unhealthy(plugins)
    if settings.auth.local.enabled:
        users = ", ".join(user.name for user in settings.auth.local.users)
        say(
            f"demo sign-in is on: anyone here can sign in as {users} (auth.local.enabled)",
            mark="!",
            colour="yellow",
        )
    elif not settings.auth.oidc.is_configured:
        say(
            "no sign-in is configured: set auth.oidc.* (or make an API token with "
            "`paved token create`)",
            mark="!",
            colour="yellow",
        )
    mlflow_server = _start_mlflow(settings)
    say(f"Paved is serving on {click.style(settings.base_url, bold=True)} (Ctrl-C stops it)")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    )
    # uvicorn shuts down gracefully, then re-raises the Ctrl-C it caught.
    try:
        with suppress(KeyboardInterrupt):
            server.run()
    finally:
        if mlflow_server is not None:
            mlflow_server.stop()
    if not server.started:
        raise SystemExit(1)
    say("Paved stopped")


def _start_mlflow(settings: Settings) -> EmbeddedServer | None:
    """MLflow's server (its UI and REST API) on the embedded store, beside the portal
    `paved up` serves; an app built elsewhere (tests, another server) starts none."""
    from portal.tracking import EmbeddedServer, ui_url

    if settings.mlflow.tracking_uri is not None or not settings.mlflow.embedded_server:
        return None
    mlflow_server = EmbeddedServer(settings)
    mlflow_server.start()
    say(f"MLflow is starting on {ui_url(settings)} (its log: {settings.mlflow_dir / 'server.log'})")
    return mlflow_server


def _warn_unhealthy(plugins: Plugins) -> None:
    for record in plugins.describe():
        if not record.is_healthy:
            say(
                f"plugin {record.name} is {record.status}: " + "; ".join(record.problems),
                mark="!",
                colour="yellow",
            )


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Revision to migrate to.")
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to the newest revision (or --revision)."""
    engine = _database(load_settings())
    before = schema.current_revision(engine)
    with progress(f"Migrating {engine.url.render_as_string(hide_password=True)}…"):
        schema.upgrade(engine, revision)
    after = schema.current_revision(engine)
    if before == after:
        say(f"already at revision {after}", mark="✓", colour="green")
    else:
        say(f"migrated from {before or 'an empty database'} to {after}", mark="✓", colour="green")


@db_cli.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one; exit 1 when they differ."""
    engine = _database(load_settings())
    current, head = schema.current_revision(engine), schema.head_revision()
    click.echo(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        raise SystemExit(1)


@config_cli.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def config_show(as_json: bool) -> None:
    """Print the effective settings (file, environment, defaults) with secrets masked."""
    data = load_settings().masked()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    source = os.environ.get(CONFIG_ENV) or ("paved.yaml" if Path("paved.yaml").is_file() else None)
    say(f"# read from {source or 'defaults'} and PAVED_* variables")
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False))


@config_cli.command("reference")
def config_reference() -> None:
    """Print every setting, its environment variable, default and meaning (Markdown)."""
    from portal.settings import render_reference

    click.echo(render_reference(), nl=False)


@plugins_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_list(as_json: bool) -> None:
    """List the plugins found, their versions, hooks and status; exit 1 if any is unhealthy."""
    from portal.app import create_app

    settings = load_settings()
    with _quiet("paved.plugins"):  # the table below names every problem
        plugins = _discover_plugins(settings)
        # Assembling the app calls every contribution hook, so broken ones show as degraded.
        create_app(settings, plugins=plugins)
    records = plugins.describe()
    if as_json:
        sys.stdout.write(json.dumps([asdict(record) for record in records], indent=2) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("plugin", "version", "status", "hooks", "problems", box=None)
        for record in records:
            colour = "green" if record.is_healthy else "red"
            table.add_row(
                record.name,
                record.version or "unknown",
                f"[{colour}]{record.status}[/]",
                ", ".join(record.hooks),
                "\n".join(record.problems),
            )
        Console().print(table)
    unhealthy = [record.name for record in records if not record.is_healthy]
    if unhealthy:
        say(
            f"unhealthy plugins: {', '.join(unhealthy)}; expected every plugin to load and "
            "answer its hooks (see the problems above)",
            mark="✗",
            colour="red",
        )
        raise SystemExit(1)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; exit 1 naming the first event that does not fit."""
    from sqlmodel import Session

    from portal.audit import verify_chain

    engine = _database(load_settings())
    _require_head(engine)
    with Session(engine) as session, progress("Verifying the audit log…") as status:
        result = verify_chain(
            session,
            on_progress=lambda done, total: status.update(
                f"Verifying the audit log… {done:,} of {total:,} events"
            ),
        )
    if result.is_intact:
        say(
            f"audit log intact: {result.checked:,} events, hash chain unbroken",
            mark="✓",
            colour="green",
        )
        return
    say(
        f"audit log broken at event {result.broken_at}: {result.problem} "
        f"({result.checked:,} events before it are intact)",
        mark="✗",
        colour="red",
    )
    raise SystemExit(1)


@cli.group("token")
def token_cli() -> None:
    """API tokens for CI and scripts (created here for the first admin)."""


def _local_actor() -> str:
    """Who ran a CLI command that changes something, for the audit log."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _audit_local(session: Session, action: str, resource: str, **detail: Any) -> None:
    """Audit a change made on this machine with the database's own credentials (no policy
    asked: whoever holds those could change the database anyway; the audit says who did)."""
    from portal.audit import append_event

    append_event(
        session,
        actor=_local_actor(),
        action=action,
        resource=resource,
        allowed=True,
        outcome="succeeded",
        detail={**detail, "via": "cli"},
    )


@token_cli.command("create")
@click.option("--user", "user", required=True, help="User entity ref, e.g. user:default/alice.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(ROLES),
    help="A Paved role; repeat for several.",
)
@click.option("--group", "groups", multiple=True, help="Catalog group ref; repeat for several.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--expires", help="Lifetime such as 30d, 12h or 90m.  [default: never]")
def token_create(
    user: str, roles: tuple[str, ...], groups: tuple[str, ...], name: str, expires: str | None
) -> None:
    """Create a token and print it once (stdout); it is stored only as a hash."""
    from sqlmodel import Session

    from portal.auth.identity import USER_REF
    from portal.auth.tokens import issue_token, parse_duration

    if not USER_REF.match(user):
        raise InvalidInput.for_field(
            "--user",
            f"{user!r} is not a user ref",
            "user:<namespace>/<name>, e.g. user:default/alice",
        )
    expires_in = parse_duration(expires) if expires else None
    engine = _database(load_settings())
    _require_head(engine)
    with Session(engine) as session:
        issued = issue_token(
            session,
            user_ref=user,
            roles=roles,
            groups=groups,
            name=name,
            created_by=_local_actor(),
            expires_in=expires_in,
        )
        _audit_local(
            session, "auth.token.create", f"token:{issued.token.id}", user=user, roles=list(roles)
        )
        session.commit()
        token_id = issued.token.id
    click.echo(issued.secret)
    until = f"until {issued.token.expires_at:%Y-%m-%d %H:%M} UTC" if expires_in else "no expiry"
    say(
        f"token {token_id} for {user} ({', '.join(roles)}), {until}; it is shown only this once",
        mark="✓",
        colour="green",
    )


@token_cli.command("list")
@click.option("--user", "user", help="Only this user's tokens.")
def token_list(user: str | None) -> None:
    """List tokens (never their secrets)."""
    from sqlmodel import Session

    from portal.auth.tokens import list_tokens

    engine = _database(load_settings())
    _require_head(engine)
    with Session(engine) as session:
        for token in list_tokens(session, user_ref=user):
            state = "revoked" if token.revoked_at else "active"
            click.echo(
                f"{token.id}\t{token.hint}…\t{token.user_ref}\t{','.join(token.roles)}\t"
                f"{token.name}\t{state}"
            )


@token_cli.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID; it stops working at once."""
    from sqlmodel import Session

    from portal.auth.identity import Identity
    from portal.auth.tokens import revoke_token

    engine = _database(load_settings())
    _require_head(engine)
    with Session(engine) as session:
        token = revoke_token(session, token_id, by=Identity(_local_actor(), roles=("admin",)))
        _audit_local(session, "auth.token.revoke", f"token:{token_id}", user=token.user_ref)
        session.commit()
    say(f"token {token_id} revoked", mark="✓", colour="green")


@cli.command()
@click.option(
    "--drain", is_flag=True, help="Exit once no task is waiting instead of running forever."
)
def worker(drain: bool) -> None:
    """Run tasks in this process (beside portals with tasks.in_process_worker off)."""
    from portal.app import collect_policy_folders, collect_task_handlers
    from portal.gate import Authority
    from portal.observability import configure_logging
    from portal.policy import make_engine
    from portal.worker import Worker

    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    engine = _database(settings)
    _require_head(engine)
    plugins = _discover_plugins(settings)
    _warn_unhealthy(plugins)
    policy = make_engine(
        engine_url=settings.policy.engine_url,
        timeout=settings.policy.timeout,
        folders=collect_policy_folders(settings, plugins),
    )
    runner = Worker(
        engine,
        list(collect_task_handlers(plugins).values()),
        settings.tasks,
        portal_settings=settings,
        authority=Authority(policy, plugins, engine, settings),
    )

    def stop(_signal: int, _frame: FrameType | None) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(f"worker {runner.worker_id} runs {', '.join(sorted(runner.handlers)) or 'nothing'}")
    if drain:
        ran = 0
        with progress("Draining the queue…") as status:
            while not runner.is_stopping and runner.run_once():
                ran += 1
                status.update(f"Draining the queue… {ran} done")
        say(f"queue drained: {ran} task{'s' if ran != 1 else ''} run", mark="✓", colour="green")
        return
    runner.run_forever()


def main(argv: list[str] | None = None) -> Any:
    """Entry point of ``paved``: expected failures become one line and an exit code."""
    try:
        return cli.main(args=argv, prog_name="paved", standalone_mode=True)
    except ConfigurationError as exc:
        say(str(exc), mark="error:", colour="red")
        sys.exit(2)
    except PavedError as exc:
        say(str(exc), mark="error:", colour="red")
        sys.exit(1)
