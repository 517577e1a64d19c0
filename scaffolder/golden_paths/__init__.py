"""Paved's bundled templates, the golden paths: each folder holds a ``template.yaml`` and
the skeleton it renders; ``catalog-info.yaml`` here registers them all."""

from pathlib import Path

GOLDEN_PATHS = Path(__file__).parent
