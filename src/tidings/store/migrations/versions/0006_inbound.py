"""inbound integrations and their audit log

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=500), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("mappings", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "inbound_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration", sa.String(length=100), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("external_type", sa.String(length=128), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_log", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_log_webhook", ["integration", "webhook_id"], unique=False)


def downgrade() -> None:
    raise RuntimeError("Tidings migrations are forward-only")
