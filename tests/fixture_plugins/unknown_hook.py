"""A plugin implementing a hook that does not exist (a typo of paved_routes)."""

from portal import hookimpl


@hookimpl
def paved_route():  # type: ignore[no-untyped-def]
    return []
