"""Demo data: loaded once per database, by every plugin in one transaction."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal.db import utcnow
from portal.models import PortalMeta
from portal.plugins import Plugins
from portal.settings import Settings

DEMO_LOADED_KEY = "demo_loaded_at"


def load_demo_data(engine: Engine, plugins: Plugins, settings: Settings) -> bool:
    """Load every plugin's demo data unless this database already has it; True if loaded."""
    with Session(engine) as session:
        if session.get(PortalMeta, DEMO_LOADED_KEY) is not None:
            return False
        # A savepoint per plugin: a plugin that fails leaves none of its rows behind.
        plugins.call(
            "paved_demo_data", each=session.begin_nested, session=session, settings=settings
        )
        session.add(PortalMeta(key=DEMO_LOADED_KEY, value=utcnow().isoformat()))
        session.commit()
    return True
