"""Jobs remember the request that published their event (X-Request-ID)

The outbox row and the job rows made from it carry the publish request's
id, so a job's attempts can be traced to the request that caused them.
Existing rows have none.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("outbox", "jobs")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("request_id", sa.String(128), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("request_id")
