"""A plugin whose import fails, as when a dependency of it is missing."""

import paved_lineage_dependency_that_is_not_installed  # noqa: F401
