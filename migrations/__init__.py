"""Alembic environment and versions for every Paved table (SQLite and PostgreSQL)."""
