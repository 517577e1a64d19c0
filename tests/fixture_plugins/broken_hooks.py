"""A plugin that loads but whose hooks raise or return the wrong things."""

from portal import NavItem, hookimpl


@hookimpl
def paved_nav_items():  # type: ignore[no-untyped-def]
    raise RuntimeError("navigation service is down")


@hookimpl
def paved_actions():  # type: ignore[no-untyped-def]
    return "broken.thing.read"  # a string, not a list of Action


@hookimpl
def paved_entity_tabs():  # type: ignore[no-untyped-def]
    return [NavItem("Not a tab", "/")]


@hookimpl
def paved_startup(app, settings):  # type: ignore[no-untyped-def]
    raise RuntimeError("cannot warm the cache")
