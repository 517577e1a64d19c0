"""Alembic environment: runs Paved's migrations on the connection or URL it is given."""

from alembic import context
from sqlalchemy import create_engine

import catalog.models  # noqa: F401  (registers the catalog tables)
import plugins.cost.models
import plugins.pii.models
import plugins.registry.models  # registers the registry tables
import plugins.serving.models
import plugins.soc2.models
import plugins.training.models  # noqa: F401  (registers the training tables)
import scaffolder.models  # noqa: F401  (registers the scaffolder tables)
from portal.models import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


def _run(connection):  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
