"""The catalog's tables: registered locations, entities stored whole, their flattened
search rows and their relations (ARCHITECTURE.md, "Data")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlmodel import Field, Session, SQLModel, col, delete, select

from portal.db import utcnow

# Longest value kept in a search row, as Backstage does: longer ones are not searchable.
SEARCH_VALUE_MAX = 200


class CatalogLocation(SQLModel, table=True):
    """A location registered through the API (or the demo): where entities are read from."""

    __tablename__ = "catalog_location"

    id: str = Field(primary_key=True, max_length=36)
    type: str = Field(max_length=20)
    target: str = Field(sa_column=Column(String(2000), nullable=False, unique=True))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    refreshed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # What went wrong reading it the last time ([{field, message, expected}]); empty when fine.
    errors: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )


class CatalogEntity(SQLModel, table=True):
    """One entity, stored whole as the API returns it (``body``), plus what is queried."""

    __tablename__ = "catalog_entity"
    __table_args__ = (
        # The default order (kind, namespace, name) and ordering by name read these in
        # order: a page is a few index entries, however large the catalog.
        Index("ix_catalog_entity_kind_order", "kind_key", "namespace_key", "name_key", "uid"),
        Index("ix_catalog_entity_name_order", "name_key", "uid"),
        Index("ix_catalog_entity_location", "location_id"),
    )

    uid: str = Field(primary_key=True, max_length=36)
    # The lower-cased ref, kind:namespace/name: unique, as Backstage compares refs.
    ref: str = Field(sa_column=Column(String(400), nullable=False, unique=True))
    kind_key: str = Field(max_length=100)
    namespace_key: str = Field(max_length=100)
    name_key: str = Field(max_length=100)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    etag: str = Field(max_length=64)
    # The registered location whose reading emitted it, and the file or URL it came from.
    location_id: str | None = Field(
        default=None,
        sa_column=Column(String(36), ForeignKey("catalog_location.id", ondelete="SET NULL")),
    )
    source: str = Field(sa_column=Column(String(2000), nullable=False))
    # SHA-256 of the entity as read, so an unchanged entity costs no write.
    source_hash: str = Field(max_length=64)
    is_orphan: bool = Field(default=False)
    errors: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Lower-cased text full-text filters match (name, title, description, tags, ...).
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    refreshed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class CatalogSearch(SQLModel, table=True):
    """One flattened field of an entity (``spec.type`` = ``service``), lower-cased.

    Filters are answered from here: ``(key, value, entity_uid)`` is the index every
    condition uses, so a filter on any field costs one index range.
    """

    __tablename__ = "catalog_search"
    __table_args__ = (Index("ix_catalog_search_key_value", "key", "value", "entity_uid"),)

    # The key is the entity and the row's place among its rows: deleting an entity's rows
    # reads the key's index, and a large ingestion maintains two indexes, not four (no
    # sequence, no index of its own for entity_uid). No foreign key either: checking one
    # per row made a large ingestion three times slower. Rows go with their entity through
    # delete_entities.
    entity_uid: str = Field(primary_key=True, max_length=36)
    ordinal: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    key: str = Field(max_length=200)
    # None when the value is too long to search (the key still says the field exists).
    value: str | None = Field(default=None, max_length=SEARCH_VALUE_MAX)
    # The value as written, for facets and filters shown to people.
    original_value: str | None = Field(default=None, max_length=SEARCH_VALUE_MAX)


class CatalogRelation(SQLModel, table=True):
    """A relation ``source -type-> target`` that ``origin_uid``'s spec implies.

    ``*_key`` are the lower-cased refs looked up by; ``target_ref`` is the target as the
    API shows it (kind and namespace lower-cased, name as written).
    """

    __tablename__ = "catalog_relation"
    __table_args__ = (Index("ix_catalog_relation_source", "source_key", "type"),)

    # Keyed like CatalogSearch: the entity whose spec implies it, and its place there.
    origin_uid: str = Field(primary_key=True, max_length=36)
    ordinal: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    source_key: str = Field(max_length=400)
    type: str = Field(max_length=50)
    target_key: str = Field(max_length=400)
    target_ref: str = Field(max_length=400)


class CatalogState(SQLModel, table=True):
    """One row: the catalog's generation, one higher after every transaction that changed
    entities, their search rows or relations. Counts and facets are remembered per
    generation (``catalog.generation``)."""

    __tablename__ = "catalog_state"

    id: int = Field(default=1, primary_key=True)
    generation: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


def delete_entities(session: Session, where: ColumnElement[bool]) -> None:
    """Delete the entities ``where`` holds for, with their search rows and relations: every
    deletion of entities goes through here, as nothing in the database cascades it."""
    uids = select(col(CatalogEntity.uid)).where(where)
    session.execute(delete(CatalogSearch).where(col(CatalogSearch.entity_uid).in_(uids)))
    session.execute(delete(CatalogRelation).where(col(CatalogRelation.origin_uid).in_(uids)))
    session.execute(delete(CatalogEntity).where(where))
