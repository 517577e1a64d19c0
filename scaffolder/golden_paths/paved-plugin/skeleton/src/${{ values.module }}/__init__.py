"""${{ values.title }}: ${{ values.description | replace('"', "'") }}

A Paved plugin: ``plugin.py`` wires it into the portal through Paved's hooks."""

TITLE = ${{ values.title | dump }}
