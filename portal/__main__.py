"""``python -m portal`` runs the ``paved`` command line."""

from portal.cli import main

main()
