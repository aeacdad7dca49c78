"""SQLite: the entity index is built lazily, in bulk (entity_index, log_marks)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL keeps ix_events_entity, maintained in the append
    op.create_table(
        "entity_index",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=256), nullable=False),
        sa.Column("entity_id", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "entity_type", "entity_id", "position"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "log_marks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("upto", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO entity_index SELECT tenant_id, COALESCE(entity_type, ''), "
        "COALESCE(entity_id, ''), position FROM events "
        "WHERE entity_type IS NOT NULL OR entity_id IS NOT NULL ORDER BY 1, 2, 3, 4"
    )
    op.execute(
        "INSERT INTO log_marks (name, upto) "
        "SELECT 'entities', COALESCE(MAX(position), 0) FROM events"
    )
    op.drop_index("ix_events_entity", table_name="events")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_index("ix_events_entity", "events", ["tenant_id", "entity_type", "entity_id"])
    op.drop_table("log_marks")
    op.drop_table("entity_index")
