"""API keys: expiry, last use and a per-key publish rate

Existing keys keep working as before: no expiry, never used (as far as the
store knows) and the default publish rate (``TIDINGS_PUBLISH_RATE``).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = ("expires_at", "last_used_at", "publish_rate")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
